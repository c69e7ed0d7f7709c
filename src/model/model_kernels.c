/* model_kernels.c - the model's side of the kernel choice: which matrices the calibration times
 * (every layer matrix and the lm_head, in forward order) and the report of what was chosen. */
#include "model/model.h"

#include "base/cpu.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "io/gguf.h"
#include "kernels/quant_amx.h"
#include "kernels/tune.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add(kern_tune_mat *v, int n, const wmat *w) {
    if (!w->data || w->rows <= 0 || w->cols <= 0) return n;
    v[n] = (kern_tune_mat){.w = w->data, .wt = w->dt, .N = w->rows, .K = w->cols};
    return n + 1;
}

/* The model's matrices in the order a forward pass reads them. *n_out gets the count. */
static kern_tune_mat *model_mats(const struct cllm_model *m, int *n_out) {
    int L = m->cfg.n_layers, n = 0;
    kern_tune_mat *v = calloc((size_t)L * 7 + 1, sizeof *v);
    if (!v) return NULL;
    for (int l = 0; l < L; l++) {
        const layer_weights *w = &m->w.layers[l];
        const wmat *mats[] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down};
        for (int i = 0; i < 7; i++)
            n = add(v, n, mats[i]);
    }
    n = add(v, n, &m->w.lm_head);
    *n_out = n;
    return v;
}

/* Whether a matrix lies in a mapped model file (GGUF or safetensors), whose pages the AMX repack
 * may give back to the OS (they are re-read from the file if anything ever touches them again; a
 * tied embedding reads its rows from the copy, forward.c). Never for memory the model allocated
 * (--quant copies). */
static int releasable(const struct cllm_model *m, const kern_tune_mat *t) {
    const uint8_t *p = t->w, *end = p + (size_t)t->N * dtype_row_bytes(t->wt, t->K);
    if (m->gguf) {
        const uint8_t *base;
        size_t size;
        gguf_mapped_range(m->gguf, &base, &size);
        return p >= base && end <= base + size;
    }
    for (int i = 0; i < m->st.n_files; i++) /* a safetensors shard */
        if (p >= m->st.files[i].data && end <= m->st.files[i].data + m->st.files[i].size) return 1;
    return 0;
}

cllm_status model_tune_kernels(struct cllm_model *m) {
    int n = 0;
    kern_tune_mat *v = model_mats(m, &n);
    if (!v) return err_set(CLLM_ERR_NOMEM, "out of memory");
    cllm_status st = kern_tune_model(m->tp, v, n);
    /* AMX family: every matrix of that dtype is repacked now (replacing its mapped pages);
     * otherwise drop copies the calibration made */
    for (int i = 0; i < n && st == CLLM_OK; i++) {
        if (!amx_packable(v[i].wt)) continue;
        if (kern_tune_family(v[i].wt) != KERN_MM_AMX) {
            quant_amx_unregister(v[i].w);
        } else if ((st = quant_amx_register_releasing(v[i].w, v[i].wt, v[i].N, v[i].K,
                                                      releasable(m, &v[i]), m->tp)) == CLLM_OK) {
            m->amx_repacked = 1;
        }
    }
    free(v);
    return st;
}

void model_release_kernels(struct cllm_model *m) {
    if (!m->amx_repacked) return;
    int n = 0;
    kern_tune_mat *v = model_mats(m, &n);
    for (int i = 0; v && i < n; i++)
        quant_amx_unregister(v[i].w);
    free(v);
}

cllm_status cllm_model_kernels(const cllm_model *m, char **text) {
    *text = NULL;
    int n = 0;
    kern_tune_mat *v = model_mats(m, &n);
    if (!v) return err_set(CLLM_ERR_NOMEM, "out of memory");
    strbuf s = {0}; /* errors stick: checked once at the end */
    sb_printf(&s, "cpu: %s (%s)\n", kern_cpu_model(), cpu_level_name());
    int seen[DTYPE_COUNT] = {0};
    for (int i = 0; i < n; i++) {
        dtype t = v[i].wt;
        if (seen[t]++) continue;
        kern_tune_info in;
        kern_tune_get(t, &in);
        sb_printf(&s, "kernels %-5s %-10s gemv prefetch %d tiles  %s", dtype_name(t),
                  kern_mm_path_name(in.family), in.pf_tiles, kern_tune_source_name(in.source));
        if (in.gemv_gbs > 0)
            sb_printf(&s, " (%d threads: gemv %.1f GB/s, gemm M=64 %.1f GFLOP/s%s", in.threads,
                      in.gemv_gbs, in.gemm_gflops, in.source == KERN_TUNE_MEASURED ? "" : ")");
        if (in.gemv_gbs > 0 && in.source == KERN_TUNE_MEASURED)
            sb_printf(&s, ", calibrated in %.2f s)", in.seconds);
        int packed = 0;
        size_t bytes = 0;
        for (int j = i; j < n; j++)
            if (v[j].wt == t && quant_amx_lookup(v[j].w, t, v[j].N, v[j].K)) {
                packed++;
                bytes += quant_amx_packed_bytes(t, v[j].N, v[j].K);
            }
        if (packed)
            sb_printf(&s, "; %d matrices repacked for amx (%.1f MiB)", packed, bytes / 1048576.0);
        sb_putc(&s, '\n');
    }
    free(v);
    cllm_status st = sb_status(&s);
    if (st != CLLM_OK) {
        sb_free(&s);
        return st;
    }
    *text = sb_take(&s, NULL);
    return CLLM_OK;
}
