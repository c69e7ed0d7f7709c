/* test_chat_limits.c - hostile templates must fail cleanly (limits, not crashes), and the
 * tokenizer_config.json loader must find templates and bos/eos tokens. */
#include "chat/chat_template.h"
#include "check.h"
#include "testdata.h"

#include <stdlib.h>
#include <string.h>

static cllm_status render(const char *src, const char *ctx_json, char **out) {
    chat_template *t = NULL;
    *out = NULL;
    cllm_status st = chat_template_parse(src, strlen(src), &t);
    if (st) return st;
    json_t *ctx = json_loads(ctx_json, 0, NULL);
    size_t n;
    st = chat_template_render(t, ctx, out, &n);
    json_decref(ctx);
    chat_template_free(t);
    return st;
}

int main(void) {
    char *out;
    /* deeply nested expression: parser depth limit */
    size_t n = 5000;
    char *deep = malloc(2 * n + 16);
    strcpy(deep, "{{ ");
    for (size_t i = 0; i < n; i++)
        strcat(deep, "(");
    strcat(deep, "1");
    for (size_t i = 0; i < n; i++)
        strcat(deep, ")");
    strcat(deep, " }}");
    CHECK(render(deep, "{}", &out) == CLLM_ERR_LIMIT);
    free(deep);
    /* huge range is refused like jinja2's sandbox */
    CHECK(render("{% for i in range(100000000) %}x{% endfor %}", "{}", &out) == CLLM_ERR_LIMIT);
    /* unbounded macro recursion */
    CHECK(render("{% macro f(x) %}{{ f(x) }}{% endmacro %}{{ f(1) }}", "{}", &out) ==
          CLLM_ERR_LIMIT);
    /* output growth bounded */
    CHECK(render("{% set s = 'x' * 1000000 %}{% for i in range(100000) %}{{ s }}{% endfor %}", "{}",
                 &out) == CLLM_ERR_LIMIT);
    /* raise_exception message is reported */
    CHECK(render("{{ raise_exception('bad roles') }}", "{}", &out) == CLLM_ERR_INVALID_ARG);
    CHECK(strstr(cllm_last_error(), "bad roles") != NULL);
    /* unsupported construct and syntax errors name the line */
    CHECK(render("\n{% include 'x' %}", "{}", &out) == CLLM_ERR_UNSUPPORTED);
    CHECK(strstr(cllm_last_error(), "line 2") != NULL);
    CHECK(render("{% for %}", "{}", &out) == CLLM_ERR_FORMAT);
    /* simple success, undefined renders empty */
    CHECK(render("a{{ nope }}b{{ x.y }}", "{\"x\": {}}", &out) == CLLM_OK);
    CHECK(out && !strcmp(out, "ab"));
    free(out);
    /* attribute of undefined is an error, like jinja2 */
    CHECK(render("{{ nope.y }}", "{}", &out) == CLLM_ERR_INVALID_ARG);

    {
        char dir[1024];
        chat_template *t;
        char *bos, *eos;
        td_join(dir, sizeof dir, "tokenizers/llama3");
        CHECK(chat_load_dir(dir, &t, &bos, &eos) == CLLM_OK);
        CHECK(bos && !strcmp(bos, "<|begin_of_text|>"));
        CHECK(eos && !strcmp(eos, "<|end_of_text|>"));
        chat_template_free(t);
        free(bos);
        free(eos);
        td_join(dir, sizeof dir, "stories260K-hf");
        CHECK(chat_load_dir(dir, &t, &bos, &eos) == CLLM_ERR_NOT_FOUND);
        CHECK(bos && !strcmp(bos, "<s>")); /* tokens are read even without a template */
        free(bos);
        free(eos);
        td_join(dir, sizeof dir, "no-such-dir");
        CHECK(chat_load_dir(dir, &t, NULL, NULL) == CLLM_ERR_NOT_FOUND);
    }
    CHECK_DONE();
}
