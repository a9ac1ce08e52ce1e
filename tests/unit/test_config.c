// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the configuration parser. Every test writes its config file
 * into a folder made with mkdtemp() and removed when the tests end.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <ini.h>

#include "user/lib/config.h"
#include "user/lib/stack.h"

static char test_dir[] = "/tmp/borderflow-test-config.XXXXXX";
static char conf_path[sizeof(test_dir) + 32];

static int setup_dir(void **state)
{
	if (!mkdtemp(test_dir))
		return -1;
	(void)snprintf(conf_path, sizeof(conf_path), "%s/borderflow.conf", test_dir);
	return 0;
}

static int teardown_dir(void **state)
{
	char subdir[sizeof(test_dir) + 32];

	(void)snprintf(subdir, sizeof(subdir), "%s/subdir", test_dir);
	(void)unlink(conf_path);
	(void)rmdir(subdir);
	return rmdir(test_dir);
}

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *file = fopen(path, "w");

	assert_non_null(file);
	assert_int_equal(fwrite(text, 1, len, file), len);
	assert_int_equal(fclose(file), 0);
}

/* Writes text as the config file and loads it into cfg. */
static int load_text(const char *text, struct bf_config *cfg, struct bf_error *err)
{
	write_file(conf_path, text, strlen(text));
	memset(err, 0, sizeof(*err));
	return bf_config_load(cfg, conf_path, err);
}

static void assert_contains(const char *text, const char *part)
{
	if (!strstr(text, part)) {
		print_error("expected '%s' in '%s'\n", part, text);
		fail();
	}
}

static bool is_defaults(const struct bf_config *cfg)
{
	struct bf_config *defaults = malloc(sizeof(*defaults));
	bool equal;

	assert_non_null(defaults);
	bf_config_defaults(defaults);
	equal = !memcmp(cfg, defaults, sizeof(*cfg));
	free(defaults);
	return equal;
}

static void assert_is_defaults(const struct bf_config *cfg)
{
	assert_true(is_defaults(cfg));
}

/* Prints the config text, the message and what is wrong with them, and fails the test. */
static void fail_case(const char *text, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail_case(const char *text, const char *msg, const char *fmt, ...)
{
	va_list ap;

	print_error("config text:\n%.400s\nmessage: %s\n", text, msg);
	va_start(ap, fmt);
	vprint_error(fmt, ap);
	va_end(ap);
	print_error("\n");
	fail();
}

/*
 * Loads text, expects -EINVAL with a message that names the file, the line
 * and the value in quotes (and hint when it is not NULL), and cfg back at the
 * defaults.
 */
static void assert_rejected(const char *text, int line, const char *value, const char *hint)
{
	struct bf_config cfg;
	struct bf_error err;
	char where[sizeof(conf_path) + 64];
	char quoted[256];
	int ret;

	ret = load_text(text, &cfg, &err);
	(void)snprintf(where, sizeof(where), "config file '%s' line %d: ", conf_path, line);
	(void)snprintf(quoted, sizeof(quoted), "'%s'", value);
	if (ret != -EINVAL)
		fail_case(text, err.msg, "returned %d, expected -EINVAL", ret);
	if (!strstr(err.msg, where))
		fail_case(text, err.msg, "message lacks \"%s\"", where);
	if (!strstr(err.msg, quoted))
		fail_case(text, err.msg, "message lacks the value %s", quoted);
	if (hint && !strstr(err.msg, hint))
		fail_case(text, err.msg, "message lacks \"%s\"", hint);
	if (!is_defaults(&cfg))
		fail_case(text, err.msg, "cfg is not back at the defaults");
}

static void test_metrics_other_and_textfile(void **state)
{
	struct bf_config cfg;
	struct bf_error err = { { 0 } };

	bf_config_defaults(&cfg);
	assert_true(cfg.metrics_other);
	assert_string_equal(cfg.metrics_textfile, "");

	assert_int_equal(load_text("[metrics]\nother = hide\ntextfile = /var/lib/x\n", &cfg, &err),
			 0);
	assert_false(cfg.metrics_other);
	assert_string_equal(cfg.metrics_textfile, "/var/lib/x");
	bf_config_free(&cfg);

	assert_int_not_equal(load_text("[metrics]\nother = maybe\n", &cfg, &err), 0);
	assert_non_null(strstr(err.msg, "'maybe'"));
	assert_non_null(strstr(err.msg, "show or hide"));
	assert_non_null(strstr(err.msg, "line 2"));
	assert_true(cfg.metrics_other);

	assert_int_not_equal(load_text("[metrics]\ntextfile = relative/dir\n", &cfg, &err), 0);
	assert_non_null(strstr(err.msg, "relative/dir"));
	bf_config_free(&cfg);
}

static void test_defaults_values(void **state)
{
	struct bf_config cfg;

	bf_config_defaults(&cfg);
	assert_string_equal(cfg.path, "");
	assert_int_equal(cfg.napproved, 2);
	assert_int_equal(cfg.approved[0], BF_CC('M', 'O'));
	assert_int_equal(cfg.approved[1], BF_CC('H', 'K'));
	assert_true(cfg.unknown_alert);
	assert_int_equal(cfg.ngeo_data, 2);
	assert_string_equal(cfg.geo_data[0], "/usr/share/borderflow/geoip");
	assert_string_equal(cfg.geo_data[1], "/usr/share/borderflow/geoip6");
	assert_int_equal(cfg.ngeo_override, 0);
	assert_int_equal(cfg.ngeo_lists, 0);
	assert_int_equal(cfg.ngeo_mmdb_country, 3);
	assert_string_equal(cfg.geo_mmdb_country[0], "country/iso_code");
	assert_string_equal(cfg.geo_mmdb_country[1], "registered_country/iso_code");
	assert_string_equal(cfg.geo_mmdb_country[2], "country_code");
	assert_int_equal(cfg.napps, 1);
	assert_string_equal(cfg.apps[0].name, "dingtalk");
	assert_int_equal(cfg.apps[0].npaths, 1);
	assert_string_equal(cfg.apps[0].paths[0], "/opt/apps/com.alibabainc.dingtalk/");
	assert_int_equal(cfg.apps[0].ncomms, 1);
	assert_string_equal(cfg.apps[0].comms[0], "com.alibabainc.");
	assert_string_equal(cfg.alerts_file, "/var/log/borderflow/alerts.jsonl");
	assert_int_equal(cfg.alerts_repeat_s, 600);
	assert_string_equal(cfg.metrics_listen, "127.0.0.1:9782");
	assert_string_equal(cfg.history_dir, "/var/lib/borderflow/history");
	assert_int_equal(cfg.history_retention_s, 30 * 86400);
	assert_string_equal(cfg.control_socket, "/run/borderflow/borderflowd.sock");
	assert_string_equal(cfg.pin_dir, "/sys/fs/bpf/borderflow");
	assert_int_equal(cfg.sockets, 262144);
	bf_config_free(&cfg);
}

static void test_load_empty_file(void **state)
{
	struct bf_config cfg;
	struct bf_error err;
	struct bf_config *expected = malloc(sizeof(*expected));

	assert_non_null(expected);
	assert_int_equal(load_text("", &cfg, &err), 0);
	bf_config_defaults(expected);
	strcpy(expected->path, conf_path);
	assert_memory_equal(&cfg, expected, sizeof(cfg));
	free(expected);
	bf_config_free(&cfg);
}

static const char full_config[] =
	"; borderflow test config\n"
	"# a comment in the other style\n"
	"[policy]\n"
	"approved = mo HK CN          ; space-separated ISO 3166-1 alpha-2 codes\n"
	"unknown = ignore           ; alert | ignore\n"
	"\n"
	"[geo]\n"
	"data = /data/geoip /data/geoip6 ; replaces the default list\n"
	"override = /etc/borderflow/override.csv /etc/borderflow/more.csv   ; CIDR,CC\n"
	"\n"
	"[app dingtalk]            ; one section per watched application\n"
	"path = /opt/apps/com.alibabainc.dingtalk/ /usr/bin/dingtalk ; executables\n"
	"comm = com.alibabainc. dingtalk    ; process name, a last resort\n"
	"\n"
	"[app browser_2-x]\n"
	"comm = firefox-esr\n"
	"\n"
	"[alerts]\n"
	"file = /var/log/bf/alerts.jsonl\n"
	"repeat = 90s              ; one alert per destination per interval\n"
	"\n"
	"[metrics]\n"
	"listen = [::1]:9100\n"
	"\n"
	"[history]\n"
	"dir = /srv/borderflow/history\n"
	"retention = 365d\n"
	"\n"
	"[daemon]\n"
	"socket = /run/bf/bf.sock\n"
	"pin = /sys/fs/bpf/bf\n"
	"sockets = 65536\n";

static void test_load_full_file(void **state)
{
	struct bf_config cfg;
	struct bf_error err;

	assert_int_equal(load_text(full_config, &cfg, &err), 0);
	assert_string_equal(cfg.path, conf_path);
	assert_int_equal(cfg.napproved, 3);
	assert_int_equal(cfg.approved[0], BF_CC('M', 'O'));
	assert_int_equal(cfg.approved[1], BF_CC('H', 'K'));
	assert_int_equal(cfg.approved[2], BF_CC('C', 'N'));
	assert_false(cfg.unknown_alert);

	assert_int_equal(cfg.ngeo_data, 2);
	assert_string_equal(cfg.geo_data[0], "/data/geoip");
	assert_string_equal(cfg.geo_data[1], "/data/geoip6");
	assert_int_equal(cfg.ngeo_override, 2);
	assert_string_equal(cfg.geo_override[0], "/etc/borderflow/override.csv");
	assert_string_equal(cfg.geo_override[1], "/etc/borderflow/more.csv");

	assert_int_equal(cfg.napps, 2);
	assert_string_equal(cfg.apps[0].name, "dingtalk");
	assert_int_equal(cfg.apps[0].npaths, 2);
	assert_string_equal(cfg.apps[0].paths[0], "/opt/apps/com.alibabainc.dingtalk/");
	assert_string_equal(cfg.apps[0].paths[1], "/usr/bin/dingtalk");
	assert_int_equal(cfg.apps[0].ncomms, 2);
	assert_string_equal(cfg.apps[0].comms[0], "com.alibabainc.");
	assert_string_equal(cfg.apps[0].comms[1], "dingtalk");
	assert_string_equal(cfg.apps[1].name, "browser_2-x");
	assert_int_equal(cfg.apps[1].npaths, 0);
	assert_int_equal(cfg.apps[1].ncomms, 1);
	assert_string_equal(cfg.apps[1].comms[0], "firefox-esr");

	assert_string_equal(cfg.alerts_file, "/var/log/bf/alerts.jsonl");
	assert_int_equal(cfg.alerts_repeat_s, 90);
	assert_string_equal(cfg.metrics_listen, "[::1]:9100");
	assert_string_equal(cfg.history_dir, "/srv/borderflow/history");
	assert_int_equal(cfg.history_retention_s, 365 * 86400ULL);
	assert_string_equal(cfg.control_socket, "/run/bf/bf.sock");
	assert_string_equal(cfg.pin_dir, "/sys/fs/bpf/bf");
	assert_int_equal(cfg.sockets, 65536);
	bf_config_free(&cfg);
	assert_is_defaults(&cfg);
}

static void test_load_restores_inih_options(void **state)
{
	struct bf_config cfg;
	struct bf_error err;
	int max_line = ini_max_line;
	bool stop = ini_stop_on_first_error;

	assert_int_equal(load_text(full_config, &cfg, &err), 0);
	bf_config_free(&cfg);
	assert_int_equal(ini_max_line, max_line);
	assert_int_equal(ini_stop_on_first_error, stop);
}

/* Debian's inih strips " ;" comments itself, and the parser must not depend on that. */
static void test_inline_comments_stripped(void **state)
{
	struct bf_config cfg;
	struct bf_error err;
	bool saved = ini_allow_inline_comments;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		ini_allow_inline_comments = pass == 0;
		assert_int_equal(
			load_text("[policy]\n"
				  "approved = MO HK\t; tab before the comment\n"
				  "unknown = alert ; comment ; more\n"
				  "[alerts]\n"
				  "file = ; nothing but a comment\n"
				  "[metrics]\n"
				  "listen = 127.0.0.1:9782 ;comment without a space after ';'\n",
				  &cfg, &err),
			0);
		assert_int_equal(cfg.napproved, 2);
		assert_true(cfg.unknown_alert);
		assert_string_equal(cfg.alerts_file, "");
		assert_string_equal(cfg.metrics_listen, "127.0.0.1:9782");
		bf_config_free(&cfg);
	}
	ini_allow_inline_comments = saved;
}

/* A ';' that follows no whitespace is part of the value. */
static void test_semicolon_inside_value(void **state)
{
	assert_rejected("[policy]\nunknown = alert;x\n", 2, "alert;x", "use alert or ignore");
}

static void test_indented_keys_crlf_bom(void **state)
{
	struct bf_config cfg;
	struct bf_error err;

	assert_int_equal(load_text("\xef\xbb\xbf[policy]\r\n"
				   "  approved = CN\r\n"
				   "\tunknown = ignore\r\n"
				   "   ; indented comment\r\n"
				   "  [history]\r\n"
				   "    retention = 1h\r\n",
				   &cfg, &err),
			 0);
	assert_int_equal(cfg.napproved, 1);
	assert_int_equal(cfg.approved[0], BF_CC('C', 'N'));
	assert_false(cfg.unknown_alert);
	assert_int_equal(cfg.history_retention_s, 3600);
	bf_config_free(&cfg);
}

/* Keys that a file does not set keep their defaults, also inside a section it names. */
static void test_unset_keys_keep_defaults(void **state)
{
	struct bf_config cfg;
	struct bf_error err;

	assert_int_equal(load_text("[alerts]\nrepeat = 1m\n[geo]\noverride = /o.csv\n", &cfg, &err),
			 0);
	assert_int_equal(cfg.alerts_repeat_s, 60);
	assert_string_equal(cfg.alerts_file, "/var/log/borderflow/alerts.jsonl");
	assert_int_equal(cfg.ngeo_data, 2);
	assert_string_equal(cfg.geo_data[0], "/usr/share/borderflow/geoip");
	assert_int_equal(cfg.ngeo_override, 1);
	assert_string_equal(cfg.geo_override[0], "/o.csv");
	assert_int_equal(cfg.napps, 1);
	assert_string_equal(cfg.apps[0].name, "dingtalk");
	bf_config_free(&cfg);
}

static void test_approved_none_and_case(void **state)
{
	struct bf_config cfg;
	struct bf_error err;

	assert_int_equal(load_text("[policy]\napproved = none\n", &cfg, &err), 0);
	assert_int_equal(cfg.napproved, 0);
	bf_config_free(&cfg);

	assert_int_equal(load_text("[policy]\napproved = mo Hk tW\n", &cfg, &err), 0);
	assert_int_equal(cfg.napproved, 3);
	assert_int_equal(cfg.approved[0], BF_CC('M', 'O'));
	assert_int_equal(cfg.approved[1], BF_CC('H', 'K'));
	assert_int_equal(cfg.approved[2], BF_CC('T', 'W'));
	bf_config_free(&cfg);
}

static void test_approved_limit(void **state)
{
	/* Codes from KA on: none of KA to TZ is a pseudo code such as EU or ZZ. */
	char text[64 + 257 * 3];
	size_t used = 0;
	struct bf_config cfg;
	struct bf_error err;
	int i;

	used += (size_t)snprintf(text, sizeof(text), "[policy]\napproved =");
	for (i = 0; i < BF_CONFIG_MAX_APPROVED; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used, " %c%c", 'K' + i / 26,
					 'A' + i % 26);
	assert_int_equal(load_text(text, &cfg, &err), 0);
	assert_int_equal(cfg.napproved, BF_CONFIG_MAX_APPROVED);
	assert_int_equal(cfg.approved[0], BF_CC('K', 'A'));
	assert_int_equal(cfg.approved[255], BF_CC('T', 'V'));
	bf_config_free(&cfg);

	(void)snprintf(text + used, sizeof(text) - used, " TW");
	assert_rejected(text, 2, "TW", "at most 256");
}

static void test_app_sections_replace_default(void **state)
{
	struct bf_config cfg;
	struct bf_error err;

	assert_int_equal(load_text("[app chat]\npath = /opt/chat/bin/chat\n"
				   "[app mail]\ncomm = mail\n",
				   &cfg, &err),
			 0);
	assert_int_equal(cfg.napps, 2);
	assert_string_equal(cfg.apps[0].name, "chat");
	assert_int_equal(cfg.apps[0].npaths, 1);
	assert_string_equal(cfg.apps[0].paths[0], "/opt/chat/bin/chat");
	assert_int_equal(cfg.apps[0].ncomms, 0);
	assert_string_equal(cfg.apps[1].name, "mail");
	assert_int_equal(cfg.apps[1].npaths, 0);
	bf_config_free(&cfg);
}

static void test_app_limits(void **state)
{
	char text[BF_MAX_APPS * 40 + 128];
	char name[65];
	size_t used = 0;
	struct bf_config cfg;
	struct bf_error err;
	unsigned int i;

	for (i = 0; i < BF_MAX_APPS; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used,
					 "[app a%u]\ncomm = c%u\n", i, i);
	assert_int_equal(load_text(text, &cfg, &err), 0);
	assert_int_equal(cfg.napps, BF_MAX_APPS);
	assert_string_equal(cfg.apps[BF_MAX_APPS - 1].name, "a63");
	bf_config_free(&cfg);

	(void)snprintf(text + used, sizeof(text) - used, "[app extra]\ncomm = x\n");
	assert_rejected(text, 2 * BF_MAX_APPS + 1, "[app extra]", "at most 64");

	/* 63 characters is the longest name and 64 is too long, beyond inih's 49-byte section
	 * names. */
	memset(name, 'n', 63);
	name[63] = '\0';
	(void)snprintf(text, sizeof(text), "[app %s]\ncomm = x\n", name);
	assert_int_equal(load_text(text, &cfg, &err), 0);
	assert_string_equal(cfg.apps[0].name, name);
	bf_config_free(&cfg);
	memset(name, 'n', 64);
	name[64] = '\0';
	(void)snprintf(text, sizeof(text), "[app %s]\ncomm = x\n", name);
	assert_rejected(text, 1, name, "1 to 63 characters");
}

static void test_comm_length(void **state)
{
	struct bf_config cfg;
	struct bf_error err;

	assert_int_equal(load_text("[app x]\ncomm = 123456789012345\n", &cfg, &err), 0);
	assert_string_equal(cfg.apps[0].comms[0], "123456789012345");
	bf_config_free(&cfg);

	assert_rejected("[app x]\ncomm = ok com.alibabainc.dingtalk\n", 2,
			"com.alibabainc.dingtalk", "so use 'com.alibabainc.'");
}

static void test_list_limits(void **state)
{
	char text[256 + 20 * 8];
	size_t used;
	struct bf_config cfg;
	struct bf_error err;
	int i;

	used = (size_t)snprintf(text, sizeof(text), "[geo]\ndata =");
	for (i = 0; i < BF_CONFIG_MAX_FILES; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used, " /d%d", i);
	assert_int_equal(load_text(text, &cfg, &err), 0);
	assert_int_equal(cfg.ngeo_data, BF_CONFIG_MAX_FILES);
	assert_string_equal(cfg.geo_data[15], "/d15");
	bf_config_free(&cfg);

	(void)snprintf(text + used, sizeof(text) - used, " /d16");
	assert_rejected(text, 2, "/d16", "at most 16");

	used = (size_t)snprintf(text, sizeof(text), "[app x]\npath =");
	for (i = 0; i <= BF_CONFIG_MAX_MATCHERS; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used, " /p%d", i);
	assert_rejected(text, 2, "/p16", "at most 16");

	used = (size_t)snprintf(text, sizeof(text), "[app x]\ncomm =");
	for (i = 0; i <= BF_CONFIG_MAX_MATCHERS; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used, " c%d", i);
	assert_rejected(text, 2, "c16", "at most 16");
}

struct rejected_case {
	const char *text;
	int line;
	const char *value;
	const char *hint;
};

static const struct rejected_case rejected_cases[] = {
	/* structure */
	{ "[polcy]\n", 1, "[polcy]", "[policy], [geo], [app NAME]" },
	{ "[policy]\napprove = MO\n", 2, "approve", "approved, unknown" },
	{ "[geo]\nfile = /x\n", 2, "file", "data, override" },
	{ "[app x]\ncomm = x\npid = 1\n", 3, "pid", "path, comm" },
	{ "approved = MO\n[policy]\n", 1, "approved", "section header" },
	{ "[policy]\napproved = MO\nunknown = alert\napproved = HK\n", 4, "approved",
	  "first at line 2" },
	{ "[policy]\napproved = MO\n[geo]\ndata = /a\n[policy]\nunknown = alert\n", 5, "[policy]",
	  "first at line 1" },
	{ "[app x]\ncomm = x\n[app y]\ncomm = y\n[app x]\ncomm = z\n", 5, "[app x]",
	  "first at line 1" },
	{ "[policy\n", 1, "[policy", "']'" },
	{ "[policy] approved = MO\n", 1, "[policy] approved = MO", "after section header" },
	{ "[policy]\nhello\n", 2, "hello", "key = value" },
	{ "[geo]\ndata = /a\n  /b\n", 3, "/b", "key = value" },
	/* [policy] */
	{ "[policy]\napproved =\n", 2, "", "such as MO HK" },
	{ "[policy]\napproved = ; only a comment\n", 2, "", "such as MO HK" },
	{ "[policy]\napproved = MO M0\n", 2, "M0", "two letters" },
	{ "[policy]\napproved = MAC\n", 2, "MAC", "two letters" },
	{ "[policy]\napproved = M\n", 2, "M", "two letters" },
	{ "[policy]\napproved = MO HK mo\n", 2, "mo", "each code once" },
	{ "[policy]\napproved = none MO\n", 2, "none MO", "'none' alone" },
	{ "[policy]\napproved = MO none\n", 2, "MO none", "'none' alone" },
	{ "[policy]\napproved = MO EU\n", 2, "EU", "not a country" },
	{ "[policy]\napproved = ZZ\n", 2, "ZZ", "not a country" },
	{ "[policy]\nunknown = maybe\n", 2, "maybe", "alert or ignore" },
	{ "[policy]\nunknown = ALERT\n", 2, "ALERT", "alert or ignore" },
	{ "[policy]\nunknown =\n", 2, "", "alert or ignore" },
	/* [geo] */
	{ "[geo]\ndata =\n", 2, "", "absolute paths" },
	{ "[geo]\ndata = /a geoip6\n", 2, "geoip6", "start with '/'" },
	{ "[geo]\noverride = override.csv\n", 2, "override.csv", "start with '/'" },
	{ "[geo]\nlists = MO/etc/macau.txt\n", 2, "MO/etc/macau.txt", "CC:PATH" },
	{ "[geo]\nlists = MAC:/etc/macau.txt\n", 2, "MAC:/etc/macau.txt", "two-letter" },
	{ "[geo]\nlists = M1:/etc/macau.txt\n", 2, "M1:/etc/macau.txt", "two-letter" },
	{ "[geo]\nlists = MO:macau.txt\n", 2, "MO:macau.txt", "absolute path" },
	{ "[geo]\nlists = MO:\n", 2, "MO:", "CC:PATH" },
	{ "[geo]\nmmdb_country =\n", 2, "", "mmdb key paths" },
	{ "[geo]\nmmdb_country = country//iso_code\n", 2, "country//iso_code", "separated by '/'" },
	{ "[geo]\nmmdb_country = /country\n", 2, "/country", "separated by '/'" },
	{ "[geo]\nmmdb_country = country/\n", 2, "country/", "separated by '/'" },
	{ "[geo]\nmmdb_country = a/b/c/d/e/f/g/h/i\n", 2, "a/b/c/d/e/f/g/h/i", "up to 8 map keys" },
	{ "[geo]\nmmdb_country = a b c d e f g h i\n", 2, "i", "at most 8" },
	/* [app NAME] */
	{ "[app]\ncomm = x\n", 1, "[app]", "[app NAME]" },
	{ "[app Ding]\ncomm = x\n", 1, "Ding", "a-z, 0-9, '_' and '-'" },
	{ "[app ding.talk]\ncomm = x\n", 1, "ding.talk", "a-z, 0-9, '_' and '-'" },
	{ "[app  ding]\ncomm = x\n", 1, " ding", "a-z, 0-9, '_' and '-'" },
	{ "[app other]\ncomm = x\n", 1, "other", "reserved" },
	{ "[app unattributed]\ncomm = x\n", 1, "unattributed", "reserved" },
	{ "[app x]\n\n[policy]\nunknown = alert\n", 1, "[app x]", "'path' nor 'comm'" },
	{ "[policy]\nunknown = alert\n[app last]\n", 3, "[app last]", "'path' nor 'comm'" },
	{ "[app x]\npath = opt/x/\n", 2, "opt/x/", "start with '/'" },
	{ "[app x]\npath =\n", 2, "", "absolute paths" },
	{ "[app x]\ncomm =\n", 2, "", "1 to 15 bytes" },
	{ "[app x]\npath = /opt/x/ /opt/x/\n", 2, "/opt/x/", "also in [app x]" },
	{ "[app x]\npath = /opt/x/\n[app y]\npath = /opt/y/ /opt/x/\n", 4, "/opt/x/",
	  "also in [app x]" },
	{ "[app x]\ncomm = a b a\n", 2, "a", "also in [app x]" },
	{ "[app x]\ncomm = chat\n[app y]\ncomm = mail chat\n", 4, "chat", "also in [app x]" },
	/* [alerts] */
	{ "[alerts]\nfile = alerts.jsonl\n", 2, "alerts.jsonl", "starts with '/'" },
	{ "[alerts]\nrepeat = 0s\n", 2, "0s", "1s to 7d" },
	{ "[alerts]\nrepeat = 8d\n", 2, "8d", "1s to 7d" },
	{ "[alerts]\nrepeat = 10\n", 2, "10", "s, m, h or d" },
	{ "[alerts]\nrepeat = 10x\n", 2, "10x", "s, m, h or d" },
	{ "[alerts]\nrepeat = 10 m\n", 2, "10 m", "s, m, h or d" },
	{ "[alerts]\nrepeat = 99999999999999999999s\n", 2, "99999999999999999999s", "1s to 7d" },
	{ "[alerts]\nrepeat =\n", 2, "", "1s to 7d" },
	/* [metrics] */
	{ "[metrics]\nlisten = localhost:9782\n", 2, "localhost:9782", "numeric" },
	{ "[daemon]\nsockets = 1023\n", 2, "1023", "1024 to 4194304" },
	{ "[daemon]\nsockets = 4194305\n", 2, "4194305", "1024 to 4194304" },
	{ "[daemon]\nsockets = 64k\n", 2, "64k", "whole number" },
	{ "[daemon]\nsockets = -1\n", 2, "-1", "whole number" },
	{ "[daemon]\nsockets = 99999999999999999999999\n", 2, "99999999999999999999999",
	  "out of range" },
	{ "[metrics]\nlisten = 127.0.0.1\n", 2, "127.0.0.1", "address:port" },
	{ "[metrics]\nlisten = 127.0.0.1:0\n", 2, "127.0.0.1:0", "1 to 65535" },
	{ "[metrics]\nlisten = 127.0.0.1:65536\n", 2, "127.0.0.1:65536", "1 to 65535" },
	{ "[metrics]\nlisten = 127.0.0.1:+80\n", 2, "127.0.0.1:+80", "1 to 65535" },
	{ "[metrics]\nlisten = 127.0.0.1:\n", 2, "127.0.0.1:", "1 to 65535" },
	{ "[metrics]\nlisten = ::1:9782\n", 2, "::1:9782", "in brackets" },
	{ "[metrics]\nlisten = [::1]9782\n", 2, "[::1]9782", "[address]:port" },
	{ "[metrics]\nlisten = [::1:9782\n", 2, "[::1:9782", "[address]:port" },
	{ "[metrics]\nlisten = [127.0.0.1]:9782\n", 2, "[127.0.0.1]:9782", "numeric" },
	{ "[metrics]\nlisten = 300.0.0.1:9782\n", 2, "300.0.0.1:9782", "numeric" },
	{ "[metrics]\nlisten =\n", 2, "", "address:port" },
	/* [history] */
	{ "[history]\ndir = var/lib\n", 2, "var/lib", "starts with '/'" },
	{ "[history]\ndir =\n", 2, "", "absolute path" },
	{ "[history]\nretention = 59m\n", 2, "59m", "1h to 3650d" },
	{ "[history]\nretention = 3651d\n", 2, "3651d", "1h to 3650d" },
	{ "[history]\nretention = 30days\n", 2, "30days", "1h to 3650d" },
	/* [daemon] */
	{ "[daemon]\nsocket = run/bf.sock\n", 2, "run/bf.sock", "starts with '/'" },
	{ "[daemon]\npin = bpf\n", 2, "bpf", "starts with '/'" },
	{ "[daemon]\npin =\n", 2, "", "absolute path" },
};

static void test_geo_lists_and_mmdb_country(void **state)
{
	struct bf_config cfg;
	struct bf_error err;

	bf_config_defaults(&cfg);
	assert_int_equal(load_text("[geo]\n"
				   "lists = MO:/etc/borderflow/macau.txt hk:/etc/hk.txt EU:/e\n"
				   "mmdb_country = location/cc country/iso_code ; comment\n",
				   &cfg, &err),
			 0);
	assert_int_equal(cfg.ngeo_lists, 3);
	assert_string_equal(cfg.geo_lists[0], "/etc/borderflow/macau.txt");
	assert_int_equal(cfg.geo_list_countries[0], BF_CC('M', 'O'));
	assert_string_equal(cfg.geo_lists[1], "/etc/hk.txt");
	assert_int_equal(cfg.geo_list_countries[1], BF_CC('H', 'K'));
	/* Region codes are accepted: a list names where its prefixes are, not a verdict. */
	assert_string_equal(cfg.geo_lists[2], "/e");
	assert_int_equal(cfg.geo_list_countries[2], BF_CC('E', 'U'));
	assert_int_equal(cfg.ngeo_mmdb_country, 2);
	assert_string_equal(cfg.geo_mmdb_country[0], "location/cc");
	assert_string_equal(cfg.geo_mmdb_country[1], "country/iso_code");
	/* The default data stays when only lists are added. */
	assert_int_equal(cfg.ngeo_data, 2);
	bf_config_free(&cfg);

	assert_int_equal(
		load_text("[geo]\nlists =\nmmdb_country = subdivisions/0/iso_code\n", &cfg, &err),
		0);
	assert_int_equal(cfg.ngeo_lists, 0);
	assert_int_equal(cfg.ngeo_mmdb_country, 1);
	assert_string_equal(cfg.geo_mmdb_country[0], "subdivisions/0/iso_code");
	bf_config_free(&cfg);
	assert_int_equal(cfg.ngeo_lists, 0);
	assert_int_equal(cfg.ngeo_mmdb_country, 3);
}

static void test_invalid_values_rejected(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(rejected_cases) / sizeof(rejected_cases[0]); i++) {
		const struct rejected_case *c = &rejected_cases[i];

		assert_rejected(c->text, c->line, c->value, c->hint);
	}
}

/* An error late in the file frees everything set before it. */
static void test_error_resets_to_defaults(void **state)
{
	char text[sizeof(full_config) + 64];
	int next_line = 1;
	const char *c;

	for (c = full_config; *c; c++)
		next_line += *c == '\n';
	(void)snprintf(text, sizeof(text), "%s[geo]\n", full_config);
	assert_rejected(text, next_line, "[geo]", "first at line 7");
	(void)snprintf(text, sizeof(text), "%s[app late]\n", full_config);
	assert_rejected(text, next_line, "[app late]", "'path' nor 'comm'");
}

static void test_value_too_long_for_field(void **state)
{
	size_t len = 4200;
	char *text = malloc(len + 64);
	size_t used;

	assert_non_null(text);
	used = (size_t)snprintf(text, len + 64, "[alerts]\nfile = /");
	memset(text + used, 'a', len - used);
	(void)snprintf(text + len, 64, "\n");
	assert_rejected(text, 2, "file", "longer than 4095 bytes");

	used = (size_t)snprintf(text, len + 64, "[geo]\ndata = /");
	memset(text + used, 'a', len - used);
	(void)snprintf(text + len, 64, "\n");
	assert_rejected(text, 2, "data", "longer than 4095 bytes");
	free(text);
}

/* inih would split such a line and read the rest as a line of its own. */
static void test_line_too_long(void **state)
{
	size_t len = 20000;
	char *text = malloc(len + 64);
	struct bf_config cfg;
	struct bf_error err;
	size_t used;

	assert_non_null(text);
	used = (size_t)snprintf(text, len + 64, "[policy]\n; ");
	memset(text + used, 'c', len - used);
	(void)snprintf(text + len, 64, "\napproved = CN\n");
	assert_int_equal(load_text(text, &cfg, &err), -EINVAL);
	free(text);
	assert_contains(err.msg, conf_path);
	assert_contains(err.msg, "line 2: ");
	assert_contains(err.msg, "longer than 16383 bytes '; cccc");
	assert_is_defaults(&cfg);
}

static void test_nul_byte_rejected(void **state)
{
	static const char text[] = "[policy]\nunknown = alert\0ignore\n";
	struct bf_config cfg;
	struct bf_error err;

	write_file(conf_path, text, sizeof(text) - 1);
	assert_int_equal(bf_config_load(&cfg, conf_path, &err), -EINVAL);
	assert_contains(err.msg, "line 2: ");
	assert_contains(err.msg, "NUL byte");
	assert_is_defaults(&cfg);
}

static void test_missing_file(void **state)
{
	char path[sizeof(test_dir) + 32];
	struct bf_config cfg;
	struct bf_error err;

	(void)snprintf(path, sizeof(path), "%s/missing.conf", test_dir);
	assert_int_equal(bf_config_load(&cfg, path, &err), -ENOENT);
	assert_contains(err.msg, path);
	assert_contains(err.msg, strerror(ENOENT));
	assert_is_defaults(&cfg);
}

static void test_not_regular_file(void **state)
{
	char path[sizeof(test_dir) + 32];
	struct bf_config cfg;
	struct bf_error err;

	(void)snprintf(path, sizeof(path), "%s/subdir", test_dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(bf_config_load(&cfg, path, &err), -EINVAL);
	assert_contains(err.msg, path);
	assert_contains(err.msg, "not a regular file");
	assert_is_defaults(&cfg);
	assert_int_equal(rmdir(path), 0);
}

static void test_file_too_large(void **state)
{
	size_t len = 1024 * 1024 + 1;
	char *text = malloc(len);
	struct bf_config cfg;
	struct bf_error err;
	size_t i;

	assert_non_null(text);
	for (i = 0; i < len; i++)
		text[i] = i % 64 == 63 ? '\n' : '#';
	write_file(conf_path, text, len);
	free(text);
	assert_int_equal(bf_config_load(&cfg, conf_path, &err), -EFBIG);
	assert_contains(err.msg, conf_path);
	assert_contains(err.msg, "larger than 1 MiB");
	assert_is_defaults(&cfg);
}

static void test_reload_after_free(void **state)
{
	struct bf_config cfg;
	struct bf_error err;

	assert_int_equal(load_text(full_config, &cfg, &err), 0);
	bf_config_free(&cfg);
	assert_int_equal(load_text("[geo]\ndata = /only\n", &cfg, &err), 0);
	assert_int_equal(cfg.ngeo_data, 1);
	assert_string_equal(cfg.geo_data[0], "/only");
	bf_config_free(&cfg);
	bf_config_free(&cfg);
	assert_is_defaults(&cfg);
}

static void test_listen_forms(void **state)
{
	static const char *const valid[] = {
		"127.0.0.1:9782", "0.0.0.0:1",	       "192.0.2.10:65535",	  "[::1]:9782",
		"[::]:80",	  "[2001:db8::1]:443", "[::ffff:192.0.2.1]:9782",
	};
	char text[128];
	struct bf_config cfg;
	struct bf_error err;
	size_t i;

	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		(void)snprintf(text, sizeof(text), "[metrics]\nlisten = %s\n", valid[i]);
		if (load_text(text, &cfg, &err))
			print_error("listen '%s': %s\n", valid[i], err.msg);
		assert_string_equal(cfg.metrics_listen, valid[i]);
		bf_config_free(&cfg);
	}
}

static void test_duration_valid(void **state)
{
	static const struct {
		const char *text;
		uint64_t seconds;
	} cases[] = {
		{ "1s", 1 },
		{ "10m", 600 },
		{ "2h", 7200 },
		{ "30d", 30 * 86400ULL },
		{ "007s", 7 },
		{ "18446744073709551615s", UINT64_MAX },
		{ "213503982334601d", 213503982334601ULL * 86400 },
	};
	uint64_t seconds;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		seconds = 0;
		assert_int_equal(bf_parse_duration(cases[i].text, &seconds), 0);
		assert_int_equal(seconds, cases[i].seconds);
	}
}

static void test_duration_invalid(void **state)
{
	static const char *const cases[] = {
		"",
		"0s",
		"0",
		"00m",
		"10",
		"m",
		"10x",
		"10M",
		"10mm",
		"-1s",
		"+1s",
		" 1s",
		"1s ",
		"1.5h",
		"1e3s",
		"18446744073709551616s", /* overflows while reading digits, to 0 */
		"18446744073709551617s", /* overflows while reading digits, to 1 */
		"99999999999999999999s",
		"213503982334602d",    /* overflows in the unit multiplication */
		"307445734561825861m", /* UINT64_MAX / 60 + 1 */
	};
	uint64_t seconds = 42;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (bf_parse_duration(cases[i], &seconds) != -EINVAL) {
			print_error("duration '%s' was accepted\n", cases[i]);
			fail();
		}
		assert_int_equal(seconds, 42);
	}
}

/* Compares every value of two configs; list entries by content, not by address. */
static void assert_same_values(const struct bf_config *a, const struct bf_config *b)
{
	size_t i, j;

	assert_int_equal(a->napproved, b->napproved);
	assert_memory_equal(a->approved, b->approved, a->napproved * sizeof(a->approved[0]));
	assert_int_equal(a->unknown_alert, b->unknown_alert);
	assert_int_equal(a->ngeo_data, b->ngeo_data);
	for (i = 0; i < a->ngeo_data; i++)
		assert_string_equal(a->geo_data[i], b->geo_data[i]);
	assert_int_equal(a->ngeo_override, b->ngeo_override);
	for (i = 0; i < a->ngeo_override; i++)
		assert_string_equal(a->geo_override[i], b->geo_override[i]);
	assert_int_equal(a->ngeo_lists, b->ngeo_lists);
	for (i = 0; i < a->ngeo_lists; i++) {
		assert_string_equal(a->geo_lists[i], b->geo_lists[i]);
		assert_int_equal(a->geo_list_countries[i], b->geo_list_countries[i]);
	}
	assert_int_equal(a->ngeo_mmdb_country, b->ngeo_mmdb_country);
	for (i = 0; i < a->ngeo_mmdb_country; i++)
		assert_string_equal(a->geo_mmdb_country[i], b->geo_mmdb_country[i]);
	assert_int_equal(a->napps, b->napps);
	for (i = 0; i < a->napps; i++) {
		assert_string_equal(a->apps[i].name, b->apps[i].name);
		assert_int_equal(a->apps[i].npaths, b->apps[i].npaths);
		for (j = 0; j < a->apps[i].npaths; j++)
			assert_string_equal(a->apps[i].paths[j], b->apps[i].paths[j]);
		assert_int_equal(a->apps[i].ncomms, b->apps[i].ncomms);
		for (j = 0; j < a->apps[i].ncomms; j++)
			assert_string_equal(a->apps[i].comms[j], b->apps[i].comms[j]);
	}
	assert_string_equal(a->alerts_file, b->alerts_file);
	assert_int_equal(a->alerts_repeat_s, b->alerts_repeat_s);
	assert_string_equal(a->metrics_listen, b->metrics_listen);
	assert_string_equal(a->history_dir, b->history_dir);
	assert_int_equal(a->history_retention_s, b->history_retention_s);
	assert_string_equal(a->control_socket, b->control_socket);
	assert_string_equal(a->pin_dir, b->pin_dir);
	assert_int_equal(a->sockets, b->sockets);
}

/*
 * The installed default file must state the built-in defaults. The file is
 * found under BORDERFLOW_SOURCE_DIR, or under the current folder when that is
 * not set, and the test is skipped when it is not there.
 */
static void test_packaged_file_matches_defaults(void **state)
{
	const char *source_dir = getenv("BORDERFLOW_SOURCE_DIR");
	char path[4096];
	struct bf_config cfg, defaults;
	struct bf_error err;
	int ret;

	if (!source_dir)
		source_dir = ".";
	(void)snprintf(path, sizeof(path), "%s/packaging/borderflow.conf", source_dir);
	if (access(path, R_OK)) {
		print_message("skipped: '%s' not found; set BORDERFLOW_SOURCE_DIR\n", path);
		skip();
	}
	ret = bf_config_load(&cfg, path, &err);
	if (ret)
		print_error("%s\n", err.msg);
	assert_int_equal(ret, 0);
	bf_config_defaults(&defaults);
	assert_same_values(&cfg, &defaults);
	bf_config_free(&cfg);
}

static void test_verdict_default_policy(void **state)
{
	struct bf_config cfg;

	bf_config_defaults(&cfg);
	assert_int_equal(bf_config_verdict(&cfg, BF_CC('M', 'O'), true), BF_VERDICT_LOCAL);
	assert_int_equal(bf_config_verdict(&cfg, BF_CC('C', 'N'), true), BF_VERDICT_LOCAL);
	assert_int_equal(bf_config_verdict(&cfg, BF_CC_NONE, true), BF_VERDICT_LOCAL);
	assert_int_equal(bf_config_verdict(&cfg, BF_CC('M', 'O'), false), BF_VERDICT_APPROVED);
	assert_int_equal(bf_config_verdict(&cfg, BF_CC('H', 'K'), false), BF_VERDICT_APPROVED);
	assert_int_equal(bf_config_verdict(&cfg, BF_CC('C', 'N'), false), BF_VERDICT_FOREIGN);
	assert_int_equal(bf_config_verdict(&cfg, BF_CC('U', 'S'), false), BF_VERDICT_FOREIGN);
	assert_int_equal(bf_config_verdict(&cfg, BF_CC_NONE, false), BF_VERDICT_UNKNOWN);
}

static void test_verdict_pseudo_countries(void **state)
{
	static const char *const pseudo[] = {
		"EU", "AP", "A1", "A2", "A3", "O1", "ZZ", "XX", "??"
	};
	struct bf_config cfg;
	size_t i;

	bf_config_defaults(&cfg);
	for (i = 0; i < sizeof(pseudo) / sizeof(pseudo[0]); i++) {
		uint16_t country = BF_CC(pseudo[i][0], pseudo[i][1]);

		if (bf_config_verdict(&cfg, country, false) != BF_VERDICT_UNKNOWN)
			print_error("pseudo country '%s'\n", pseudo[i]);
		assert_int_equal(bf_config_verdict(&cfg, country, false), BF_VERDICT_UNKNOWN);
		assert_int_equal(bf_config_verdict(&cfg, country, true), BF_VERDICT_LOCAL);
	}
}

static void test_verdict_approved_none(void **state)
{
	struct bf_config cfg;
	struct bf_error err;

	assert_int_equal(load_text("[policy]\napproved = none\n", &cfg, &err), 0);
	assert_int_equal(bf_config_verdict(&cfg, BF_CC('M', 'O'), false), BF_VERDICT_FOREIGN);
	assert_int_equal(bf_config_verdict(&cfg, BF_CC_NONE, false), BF_VERDICT_UNKNOWN);
	assert_int_equal(bf_config_verdict(&cfg, BF_CC('M', 'O'), true), BF_VERDICT_LOCAL);
	bf_config_free(&cfg);
}

static void test_verdict_names(void **state)
{
	assert_string_equal(bf_verdict_name(BF_VERDICT_LOCAL), "local");
	assert_string_equal(bf_verdict_name(BF_VERDICT_APPROVED), "approved");
	assert_string_equal(bf_verdict_name(BF_VERDICT_FOREIGN), "foreign");
	assert_string_equal(bf_verdict_name(BF_VERDICT_UNKNOWN), "unknown");
	assert_string_equal(bf_verdict_name(BF_VERDICT_COUNT), "invalid");
}

/* Loads the geolocation files of text's [geo] section and expects each part in the message. */
static void assert_geo_load_fails(const char *text, const char *const *parts, size_t nparts)
{
	struct bf_geo_table table;
	struct bf_config cfg;
	struct bf_error err;
	size_t i;

	assert_int_equal(load_text(text, &cfg, &err), 0);
	bf_geo_table_init(&table);
	assert_int_equal(bf_geo_load_stack(&table, &cfg, &err), -ENOENT);
	for (i = 0; i < nparts; i++)
		assert_contains(err.msg, parts[i]);
	bf_geo_table_free(&table);
	bf_config_free(&cfg);
}

static void test_missing_geo_file_names_key(void **state)
{
	const char *data[] = { "[geo] data: ", "'/nonexistent/borderflow/geoip'",
			       "correct the path" };
	const char *override[] = { "[geo] override: ", "'/nonexistent/borderflow/override.csv'" };
	const char *lists[] = { "[geo] lists: ", "'/nonexistent/borderflow/mo.txt'" };
	char data_path[sizeof(test_dir) + 32], text[512];

	(void)snprintf(data_path, sizeof(data_path), "%s/data.csv", test_dir);
	write_file(data_path, "198.51.100.0/24,CN\n", strlen("198.51.100.0/24,CN\n"));

	assert_geo_load_fails("[geo]\ndata = /nonexistent/borderflow/geoip\n", data, 3);
	(void)snprintf(text, sizeof(text),
		       "[geo]\ndata = %s\noverride = /nonexistent/borderflow/override.csv\n",
		       data_path);
	assert_geo_load_fails(text, override, 2);
	(void)snprintf(text, sizeof(text),
		       "[geo]\ndata = %s\nlists = MO:/nonexistent/borderflow/mo.txt\n", data_path);
	assert_geo_load_fails(text, lists, 2);
	assert_int_equal(unlink(data_path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_values),
		cmocka_unit_test(test_metrics_other_and_textfile),
		cmocka_unit_test(test_load_empty_file),
		cmocka_unit_test(test_load_full_file),
		cmocka_unit_test(test_load_restores_inih_options),
		cmocka_unit_test(test_inline_comments_stripped),
		cmocka_unit_test(test_semicolon_inside_value),
		cmocka_unit_test(test_indented_keys_crlf_bom),
		cmocka_unit_test(test_unset_keys_keep_defaults),
		cmocka_unit_test(test_approved_none_and_case),
		cmocka_unit_test(test_approved_limit),
		cmocka_unit_test(test_app_sections_replace_default),
		cmocka_unit_test(test_app_limits),
		cmocka_unit_test(test_comm_length),
		cmocka_unit_test(test_list_limits),
		cmocka_unit_test(test_geo_lists_and_mmdb_country),
		cmocka_unit_test(test_invalid_values_rejected),
		cmocka_unit_test(test_error_resets_to_defaults),
		cmocka_unit_test(test_value_too_long_for_field),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_nul_byte_rejected),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_not_regular_file),
		cmocka_unit_test(test_file_too_large),
		cmocka_unit_test(test_reload_after_free),
		cmocka_unit_test(test_listen_forms),
		cmocka_unit_test(test_packaged_file_matches_defaults),
		cmocka_unit_test(test_duration_valid),
		cmocka_unit_test(test_duration_invalid),
		cmocka_unit_test(test_verdict_default_policy),
		cmocka_unit_test(test_verdict_pseudo_countries),
		cmocka_unit_test(test_verdict_approved_none),
		cmocka_unit_test(test_verdict_names),
		cmocka_unit_test(test_missing_geo_file_names_key),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
