/*
 * test_topic.c - input topic templates: the MQTT filter they become, matching received
 * topics level by level with captures, rendering meter ids, and malformed templates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "enpi_error.h"
#include "topic.h"

static int match_render(const enpi_topic_t *t, const char *topic, char *id, size_t n)
{
    enpi_span_t caps[ENPI_TOPIC_MAX_CAPS];

    if (!enpi_topic_match(t, topic, strlen(topic), caps))
        return -2;
    return enpi_topic_render_id(t, caps, id, n);
}

static void captures_become_plus_and_fill_the_id(void **state)
{
    enpi_topic_t t;
    char id[129], err[200];

    (void)state;
    assert_int_equal(
        enpi_topic_compile(&t, "enpi/{facility}/{meter}", "{facility}/{meter}", err, sizeof(err)),
        0);
    assert_string_equal(t.filter, "enpi/+/+");
    assert_int_equal(t.n_caps, 2);
    assert_true(t.id_from_topic);
    assert_int_equal(match_render(&t, "enpi/f001/em1", id, sizeof(id)), 8);
    assert_string_equal(id, "f001/em1");
    enpi_topic_free(&t);
}

static void default_id_template_is_meter(void **state)
{
    enpi_topic_t t;
    char id[129];

    (void)state;
    assert_int_equal(enpi_topic_compile(&t, "tele/{meter}/SENSOR", NULL, NULL, 0), 0);
    assert_string_equal(t.filter, "tele/+/SENSOR");
    assert_int_equal(match_render(&t, "tele/plug-7/SENSOR", id, sizeof(id)), 6);
    assert_string_equal(id, "plug-7");
    enpi_topic_free(&t);
}

static void literal_text_and_captures_mix_in_the_id(void **state)
{
    enpi_topic_t t;
    char id[129];

    (void)state;
    assert_int_equal(enpi_topic_compile(&t, "site/{a}/+/{b}", "x-{b}.{a}-y", NULL, 0), 0);
    assert_string_equal(t.filter, "site/+/+/+");
    assert_int_equal(match_render(&t, "site/1/ignored/2", id, sizeof(id)), 7);
    assert_string_equal(id, "x-2.1-y");
    enpi_topic_free(&t);
    assert_int_equal(enpi_topic_compile(&t, "shellies/{meter}/emeter/0/total", "constant", NULL, 0),
                     0);
    assert_int_equal(match_render(&t, "shellies/s1/emeter/0/total", id, sizeof(id)), 8);
    assert_string_equal(id, "constant");
    enpi_topic_free(&t);
}

static void level_counts_and_literals_must_agree(void **state)
{
    enpi_topic_t t;
    char id[129];

    (void)state;
    assert_int_equal(enpi_topic_compile(&t, "enpi/{facility}/{meter}", NULL, NULL, 0), 0);
    assert_int_equal(match_render(&t, "enpi/f1", id, sizeof(id)), -2);
    assert_int_equal(match_render(&t, "enpi/f1/m1/extra", id, sizeof(id)), -2);
    assert_int_equal(match_render(&t, "enpi/f1/m1/", id, sizeof(id)), -2);
    assert_int_equal(match_render(&t, "other/f1/m1", id, sizeof(id)), -2);
    assert_int_equal(match_render(&t, "enp/f1/m1", id, sizeof(id)), -2);
    assert_int_equal(match_render(&t, "", id, sizeof(id)), -2);
    /* an empty level is a level: '+' matches it */
    assert_int_equal(match_render(&t, "enpi//m1", id, sizeof(id)), 2);
    assert_string_equal(id, "m1");
    enpi_topic_free(&t);
}

static void hash_matches_any_remaining_levels(void **state)
{
    enpi_topic_t t;
    enpi_span_t caps[ENPI_TOPIC_MAX_CAPS];

    (void)state;
    assert_int_equal(enpi_topic_compile(&t, "spBv1.0/#", NULL, NULL, 0), 0);
    assert_string_equal(t.filter, "spBv1.0/#");
    assert_true(enpi_topic_match(&t, "spBv1.0/g1/NDATA/node1", 22, caps));
    assert_true(enpi_topic_match(&t, "spBv1.0", 7, caps)); /* MQTT: "a/#" matches "a" */
    assert_false(enpi_topic_match(&t, "spBv1.1/g1", 10, caps));
    /* no {meter} capture: the id must come from the payload */
    assert_false(t.id_from_topic);
    assert_string_equal(t.missing_capture, "meter");
    assert_int_equal(enpi_topic_render_id(&t, caps, (char[8]){0}, 8), -1);
    enpi_topic_free(&t);

    assert_int_equal(enpi_topic_compile(&t, "#", NULL, NULL, 0), 0);
    assert_true(enpi_topic_match(&t, "anything/at/all", 15, caps));
    enpi_topic_free(&t);
}

static void id_longer_than_the_buffer_is_refused(void **state)
{
    enpi_topic_t t;
    char topic[300], id[129];

    (void)state;
    assert_int_equal(enpi_topic_compile(&t, "m/{meter}", NULL, NULL, 0), 0);
    memset(topic, 'x', sizeof(topic));
    memcpy(topic, "m/", 2);
    topic[2 + 128] = '\0'; /* a 128-byte id fits */
    assert_int_equal(match_render(&t, topic, id, sizeof(id)), 128);
    topic[2 + 128] = 'x';
    topic[2 + 129] = '\0'; /* 129 does not */
    assert_int_equal(match_render(&t, topic, id, sizeof(id)), -1);
    enpi_topic_free(&t);
}

static void malformed_templates_are_rejected(void **state)
{
    static const char *const bad_topics[] = {
        "", "a/#/b", "a/x{y}/b", "a/{x}/{x}", "a/{}/b", "a/{x y}/b", "a/b+/c", "a/#b", "{a", "a}/b",
    };
    static const char *const bad_ids[] = {"", "{meter", "meter}", "{}", "a{b c}"};
    enpi_topic_t t;
    char err[200];

    (void)state;
    for (size_t i = 0; i < sizeof(bad_topics) / sizeof(bad_topics[0]); i++) {
        err[0] = '\0';
        if (enpi_topic_compile(&t, bad_topics[i], NULL, err, sizeof(err)) != ENPI_EINVAL)
            fail_msg("topic template \"%s\" was accepted", bad_topics[i]);
        assert_true(strlen(err) > 0);
        enpi_topic_free(&t);
    }
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        if (enpi_topic_compile(&t, "a/{meter}", bad_ids[i], err, sizeof(err)) != ENPI_EINVAL)
            fail_msg("id template \"%s\" was accepted", bad_ids[i]);
        enpi_topic_free(&t);
    }
}

static void id_naming_an_absent_capture_is_flagged_not_fatal(void **state)
{
    enpi_topic_t t;

    (void)state;
    assert_int_equal(enpi_topic_compile(&t, "a/{meter}", "{site}/{meter}", NULL, 0), 0);
    assert_false(t.id_from_topic);
    assert_string_equal(t.missing_capture, "site");
    enpi_topic_free(&t);
}

/* topic_for_id, then match + render_id, gives the id back: the inverse really inverts. */
static void assert_round_trip(const char *topic_tmpl, const char *id_tmpl, const char *id,
                              const char *want_topic)
{
    enpi_topic_t t;
    enpi_span_t caps[ENPI_TOPIC_MAX_CAPS];
    char topic[256], back[256];

    assert_int_equal(enpi_topic_compile(&t, topic_tmpl, id_tmpl, NULL, 0), 0);
    int n = enpi_topic_for_id(&t, id, false, topic, sizeof topic);
    assert_int_equal(n, (int)strlen(want_topic));
    assert_string_equal(topic, want_topic);
    assert_true(enpi_topic_match(&t, topic, (size_t)n, caps));
    assert_true(enpi_topic_render_id(&t, caps, back, sizeof back) >= 0);
    assert_string_equal(back, id);
    enpi_topic_free(&t);
}

static void topic_for_id_inverts_the_id_template(void **state)
{
    (void)state;
    assert_round_trip("enpi/{facility}/{meter}", "{facility}/{meter}", "f001/em1", "enpi/f001/em1");
    assert_round_trip("tele/{meter}/SENSOR", NULL, "plug-7", "tele/plug-7/SENSOR");
    assert_round_trip("x/+/{site}/{meter}", "{site}:{meter}", "a:b:c", "x/_/a/b:c");
    assert_round_trip("x/{a}/{b}", "{a}-{b}-{a}", "p-q-r-p", "x/p/q-r");
    assert_round_trip("spB/{meter}/#", NULL, "m1", "spB/m1");
}

static void topic_for_id_refuses_ids_the_template_cannot_make(void **state)
{
    enpi_topic_t t;
    char topic[64];

    (void)state;
    assert_int_equal(enpi_topic_compile(&t, "enpi/{meter}", NULL, NULL, 0), 0);
    assert_int_equal(enpi_topic_for_id(&t, "f001/em1", false, topic, sizeof topic), -1);
    assert_int_equal(enpi_topic_for_id(&t, "a+b", false, topic, sizeof topic), -1);
    /* the payload carries the id: any level value routes it to this input */
    assert_int_equal(enpi_topic_for_id(&t, "f001/em1", true, topic, sizeof topic), 6);
    assert_string_equal(topic, "enpi/_");
    assert_int_equal(enpi_topic_for_id(&t, "m", false, topic, 4), -2);
    enpi_topic_free(&t);
    assert_int_equal(enpi_topic_compile(&t, "pre/{meter}", "site-{meter}", NULL, 0), 0);
    assert_int_equal(enpi_topic_for_id(&t, "other-7", false, topic, sizeof topic), -1);
    assert_int_equal(enpi_topic_for_id(&t, "site-", false, topic, sizeof topic), -1);
    enpi_topic_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(captures_become_plus_and_fill_the_id),
        cmocka_unit_test(default_id_template_is_meter),
        cmocka_unit_test(literal_text_and_captures_mix_in_the_id),
        cmocka_unit_test(level_counts_and_literals_must_agree),
        cmocka_unit_test(hash_matches_any_remaining_levels),
        cmocka_unit_test(id_longer_than_the_buffer_is_refused),
        cmocka_unit_test(malformed_templates_are_rejected),
        cmocka_unit_test(id_naming_an_absent_capture_is_flagged_not_fatal),
        cmocka_unit_test(topic_for_id_inverts_the_id_template),
        cmocka_unit_test(topic_for_id_refuses_ids_the_template_cannot_make),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
