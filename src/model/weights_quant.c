/* weights_quant.c - quantize a bound model's matrices in memory (`cllm run --quant TYPE`): each
 * plain (f32/f16/bf16) matrix whose rows are a whole number of blocks becomes an owned copy in
 * the block type; the mapped originals are left alone. Vectors stay f32. */
#include "base/error.h"
#include "kernels/quant.h"
#include "model/weights.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

static cllm_status quantize_mat(model_weights *w, wmat *m, dtype t, float *row) {
    if (!m->data || dtype_is_quant(m->dt) || m->cols % dtype_block_elems(t)) return CLLM_OK;
    size_t in_rb = dtype_row_bytes(m->dt, m->cols), out_rb = dtype_row_bytes(t, m->cols);
    uint8_t *q = model_weights_own(w, (size_t)m->rows * out_rb);
    if (!q) return err_set(CLLM_ERR_NOMEM, "out of memory quantizing weights");
    for (int r = 0; r < m->rows; r++) {
        quant_dequantize_row(m->dt, (const uint8_t *)m->data + (size_t)r * in_rb, row, m->cols);
        quant_quantize_row(t, row, q + (size_t)r * out_rb, m->cols);
    }
    w->n_bytes += (int64_t)((size_t)m->rows * out_rb) - (int64_t)((size_t)m->rows * in_rb);
    m->data = q;
    m->dt = t;
    return CLLM_OK;
}

cllm_status model_weights_quantize(model_weights *w, int n_layers, dtype t) {
    wmat *all[2 + 7 * 1024];
    int n = 0;
    bool tied = w->lm_head.data == w->tok_embd.data;
    all[n++] = &w->tok_embd;
    if (!tied) all[n++] = &w->lm_head;
    for (int l = 0; l < n_layers && l < 1024; l++) {
        layer_weights *L = &w->layers[l];
        wmat *ms[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++)
            all[n++] = ms[i];
    }
    int maxc = 1;
    for (int i = 0; i < n; i++)
        if (all[i]->cols > maxc) maxc = all[i]->cols;
    float *row = malloc((size_t)maxc * sizeof *row);
    if (!row) return err_set(CLLM_ERR_NOMEM, "out of memory");
    cllm_status st = CLLM_OK;
    for (int i = 0; i < n && !st; i++)
        st = quantize_mat(w, all[i], t, row);
    free(row);
    if (tied) w->lm_head = w->tok_embd;
    snprintf(w->dtypes, sizeof w->dtypes, "%s (quantized at load)", dtype_name(t));
    return st;
}

bool model_quant_type(const char *name, dtype *out) {
    for (int t = 0; t < DTYPE_COUNT; t++)
        if (t != DTYPE_Q8_K && !strcasecmp(name, dtype_name((dtype)t))) {
            *out = (dtype)t;
            return true;
        }
    return false;
}
