/*
 * test_router_watch — daemons/router/incoming_watch.c: a file renamed into
 * a bucket of incoming/ is named once, a name that is not a file id is
 * not, and a bucket that goes away breaks the watch: "list everything"
 * (-1) once, then nothing more from it (the router lists at each trigger
 * pull until its safety scan opens a new watch).
 */
#include "rowtest.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "queue.h"
#include "router/incoming_watch.h"
#include "testutil.h"

#define FID "1K205ZSA5X900WET"

static int woken;

static void on_names(void *arg)
{
    (void)arg;
    woken++;
}

static void make_buckets(const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/incoming", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    for (unsigned b = 0; b < QUEUE_BUCKETS; b++) {
        snprintf(path, sizeof(path), "%s/incoming/%02x", dir, b);
        assert_int_equal(mkdir(path, 0755), 0);
    }
}

/* A file made in dir/tmp and renamed to dir/incoming/BUCKET/NAME. */
static void commit_as(const char *dir, const char *bucket, const char *name)
{
    char tmp[512], to[512];
    snprintf(tmp, sizeof(tmp), "%s/tmpfile", dir);
    snprintf(to, sizeof(to), "%s/incoming/%s/%s", dir, bucket, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(rename(tmp, to), 0);
}

static void test_named_then_broken(void **state)
{
    char dir[64], path[512];
    (void)state;
    test_temp_dir(dir, sizeof(dir), "watch");
    make_buckets(dir);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct incoming_watch *w = incoming_watch_open(&loop, dir, on_names, NULL);
    assert_non_null(w);
    assert_true(incoming_watch_ok(w));
    commit_as(dir, "3a", FID);
    commit_as(dir, "3b", "not-a-file-id");
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(woken > 0);
    struct buf ids = BUF_INIT;
    assert_int_equal(incoming_watch_take(w, &ids), 1);
    assert_int_equal(ids.len, QUEUE_FILE_ID_LEN + 1);
    assert_string_equal(ids.s, FID);
    buf_clear(&ids);
    assert_int_equal(incoming_watch_take(w, &ids), 0); /* taken: not named again */
    snprintf(path, sizeof(path), "%s/incoming/7f", dir);
    assert_int_equal(rmdir(path), 0); /* a bucket gone: its watch with it */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(incoming_watch_take(w, &ids), -1);
    assert_false(incoming_watch_ok(w));
    commit_as(dir, "3a", "1K205ZSA5X900WEV");
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(incoming_watch_take(w, &ids), 0); /* said once */
    assert_int_equal(ids.len, 0);
    incoming_watch_close(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    buf_free(&ids);
    assert_int_equal(test_remove_tree(dir), 0);
}

static void test_no_buckets_no_watch(void **state)
{
    char dir[64];
    (void)state;
    test_temp_dir(dir, sizeof(dir), "watch");
    uv_loop_t loop;
    uv_loop_init(&loop);
    assert_null(incoming_watch_open(&loop, dir, on_names, NULL)); /* the caller lists */
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(test_remove_tree(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_named_then_broken),
        cmocka_unit_test(test_no_buckets_no_watch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
