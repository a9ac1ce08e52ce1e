// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <string.h>

#include <bpf/bpf.h>

#include "registry.h"

static __u32 find_id(const struct bf_registry *reg, const char *name)
{
	__u32 id;

	for (id = 1; id <= BF_MAX_APPS; id++)
		if (!strcmp(reg->names[id], name))
			return id;
	return 0;
}

int bf_registry_load(struct bf_registry *reg, int map_fd, const struct bf_config *cfg,
		     struct bf_error *err)
{
	struct bf_app_name value;
	__u32 id;
	size_t i;
	int ret;

	memset(reg, 0, sizeof(*reg));
	for (id = 1; id <= BF_MAX_APPS; id++) {
		ret = bpf_map_lookup_elem(map_fd, &id, &value);
		if (ret)
			return bf_error_set(err, ret, "failed to read application id %u: %s", id,
					    strerror(-ret));
		value.name[sizeof(value.name) - 1] = '\0';
		strcpy(reg->names[id], value.name);
	}

	for (i = 0; i < cfg->napps; i++) {
		const char *name = cfg->apps[i].name;

		id = find_id(reg, name);
		if (!id)
			id = find_id(reg, "");
		if (!id)
			return bf_error_set(err, -ENOSPC,
					    "no free application id for '%s': the pinned counters "
					    "already name %u applications; remove the pin folder "
					    "([daemon] pin) to start new counters",
					    name, BF_MAX_APPS);
		if (!reg->names[id][0]) {
			memset(&value, 0, sizeof(value));
			strcpy(value.name, name);
			ret = bpf_map_update_elem(map_fd, &id, &value, BPF_ANY);
			if (ret)
				return bf_error_set(err, ret,
						    "failed to record application '%s': %s", name,
						    strerror(-ret));
			strcpy(reg->names[id], name);
		}
		reg->ids[i] = id;
	}
	return 0;
}

const char *bf_registry_name(const struct bf_registry *reg, __u32 app)
{
	if (app == BF_APP_OTHER)
		return "other";
	if (app == BF_APP_UNATTRIBUTED || app > BF_MAX_APPS || !reg->names[app][0])
		return "unattributed";
	return reg->names[app];
}
