/* gn_stats_prometheus against gn_stats_json: every stat of the JSON object is in the Prometheus text
 * with its value, a HELP line and a TYPE line before its sample, counters named *_total and gauges
 * not; and nothing else is there. Needs no server: the only resolver is static. */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"
#include "gnaming.h"

#define MAX_STATS 64

typedef struct stat_entry {
  char name[64];
  unsigned long long value;
} stat_entry;

/* Reads the flat JSON object gn_stats_json writes ({"key":integer,...}); -1 when it is not one. */
static int parse_stats_json(const char *json, stat_entry *stats, int max) {
  const char *p = json;
  int n = 0;
  if (*p++ != '{') return -1;
  if (*p == '}') return p[1] == 0 ? 0 : -1;
  for (;;) {
    if (n == max || *p++ != '"') return -1;
    const char *end = strchr(p, '"');
    if (!end || (size_t)(end - p) >= sizeof stats[n].name) return -1;
    memcpy(stats[n].name, p, (size_t)(end - p));
    stats[n].name[end - p] = 0;
    p = end + 1;
    if (*p++ != ':' || !isdigit((unsigned char)*p)) return -1;
    char *after = NULL;
    stats[n].value = strtoull(p, &after, 10);
    p = after;
    n++;
    if (*p == '}') return p[1] == 0 ? n : -1;
    if (*p++ != ',') return -1;
  }
}

/* Where `line` stands as a whole line of `text`, or NULL. */
static const char *find_line(const char *text, const char *line) {
  size_t len = strlen(line);
  for (const char *at = strstr(text, line); at; at = strstr(at + 1, line))
    if ((at == text || at[-1] == '\n') && at[len] == '\n') return at;
  return NULL;
}

/* The line of `text` that starts with `prefix`, or NULL. */
static const char *find_line_starting(const char *text, const char *prefix) {
  for (const char *at = strstr(text, prefix); at; at = strstr(at + 1, prefix))
    if (at == text || at[-1] == '\n') return at;
  return NULL;
}

static char *stats_json(void) {
  char *json = NULL;
  gn_error *err = NULL;
  CHECK(gn_stats_json(&json, &err) == GN_STATUS_OK, "gn_stats_json: %s", gn_error_message(err));
  gn_error_free(err);
  return json;
}

static char *stats_prometheus(void) {
  char *text = NULL;
  gn_error *err = NULL;
  CHECK(gn_stats_prometheus(&text, &err) == GN_STATUS_OK, "gn_stats_prometheus: %s", gn_error_message(err));
  gn_error_free(err);
  return text;
}

/* One update through a static resolver, so that updates_delivered is not 0. */
static void deliver_one_update(void) {
  gn_update_callback pull = {NULL, NULL, NULL};
  gn_resolver *r = NULL;
  gn_update *u = NULL;
  CHECK(gn_resolver_start("pass:///127.0.0.1:1", NULL, pull, &r, NULL) == GN_STATUS_OK, "start");
  CHECK(gn_resolver_next(r, 5000, &u, NULL) == GN_STATUS_OK && u, "first update");
  gn_update_free(u);
  gn_resolver_free(r);
}

static void the_prometheus_text_has_every_stat_of_the_json_with_its_value_help_and_type(void) {
  deliver_one_update();
  /* Both texts from one quiet moment: a JSON read before and after the Prometheus one agree. */
  char *json = NULL, *text = NULL;
  for (int attempt = 0; attempt < 10; attempt++) {
    gn_string_free(json);
    gn_string_free(text);
    json = stats_json();
    text = stats_prometheus();
    char *again = stats_json();
    bool same = json && again && strcmp(json, again) == 0;
    gn_string_free(again);
    if (same) break;
    sleep_us(10000);
  }
  if (!json || !text) {
    gn_string_free(json);
    gn_string_free(text);
    return;
  }
  stat_entry stats[MAX_STATS];
  int n = parse_stats_json(json, stats, MAX_STATS);
  CHECK(n >= 20, "the JSON has %d stats: %s", n, json);
  size_t len = strlen(text);
  CHECK(len > 0 && text[len - 1] == '\n', "the text must end with a line feed");

  int counters = 0, gauges = 0;
  for (int i = 0; i < n; i++) {
    const char *key = stats[i].name;
    if (strcmp(key, "updates_delivered") == 0) CHECK(stats[i].value >= 1, "updates_delivered %llu", stats[i].value);
    char family[96], line[160];
    /* A counter is gnaming_<key>_total (or gnaming_<key> when the key already ends in _total). */
    bool has_total = strlen(key) > 6 && strcmp(key + strlen(key) - 6, "_total") == 0;
    snprintf(family, sizeof family, "gnaming_%.60s%s", key, has_total ? "" : "_total");
    snprintf(line, sizeof line, "# TYPE %s counter", family);
    const char *type = find_line(text, line);
    if (type) {
      counters++;
    } else {
      snprintf(family, sizeof family, "gnaming_%.60s", key);
      snprintf(line, sizeof line, "# TYPE %s gauge", family);
      type = find_line(text, line);
      CHECK(type && !has_total, "%s: no counter or gauge TYPE line for it in:\n%s", key, text);
      if (!type) continue;
      gauges++;
    }
    snprintf(line, sizeof line, "# HELP %s ", family);
    const char *help = find_line_starting(text, line);
    CHECK(help && help < type, "%s: no HELP line before its TYPE line", family);
    if (help) {
      const char *sentence = help + strlen(line);
      const char *eol = strchr(sentence, '\n');
      CHECK(eol && eol - sentence > 10 && eol[-1] == '.', "%s: help '%.*s' is not a sentence", family,
            eol ? (int)(eol - sentence) : 0, sentence);
    }
    snprintf(line, sizeof line, "%s %llu", family, stats[i].value);
    const char *sample = find_line(text, line);
    CHECK(sample && sample > type, "%s: no sample '%s' after its TYPE line in:\n%s", key, line, text);
  }
  CHECK(counters > 0 && gauges > 0, "%d counters, %d gauges", counters, gauges);
  CHECK(find_line(text, "# TYPE gnaming_updates_delivered_total counter"), "updates_delivered is a counter");
  CHECK(find_line(text, "# TYPE gnaming_watches_active gauge"), "watches_active is a gauge");

  /* Nothing else: three lines a stat. */
  int lines = 0;
  for (const char *c = text; *c; c++) lines += *c == '\n';
  CHECK(lines == 3 * n, "%d lines for %d stats:\n%s", lines, n, text);
  gn_string_free(json);
  gn_string_free(text);
}

int main(void) {
  RUN(the_prometheus_text_has_every_stat_of_the_json_with_its_value_help_and_type);
  gn_runtime_shutdown(5000, NULL);
  return check_summary();
}
