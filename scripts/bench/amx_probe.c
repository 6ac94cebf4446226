// What Float32 GEMM could gain from AMX on this CPU (Sapphire Rapids-class: amx_bf16, amx_tile).
//
//   cc -O2 -mamx-tile -mamx-bf16 -pthread scripts/bench/amx_probe.c -o /tmp/amx_probe && /tmp/amx_probe
//
// AMX multiplies BF16 (8-bit mantissa). A Float32 product to Float32 accuracy needs each operand
// split into three BF16 parts (a = a0 + a1 + a2 exactly) and six BF16 products per FMA
// (a0b0, a0b1, a1b0, a0b2, a1b1, a2b0), so an AMX kernel beats the AVX-512 FMA kernel only if it
// sustains more than 6x its GFLOP/s in BF16. This prints, per thread count, (1) TDPBF16PS on
// registers only (the ceiling) and (2) a plain 2x2-tile GEMM kernel streaming packed panels from
// L2 (A 32 rows x K, B 32 columns x K, 4 C tiles), each also divided by 6.
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) TileConfig;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void configure(void) {
    TileConfig c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 8; i++) { c.rows[i] = 16; c.colsb[i] = 64; }
    _tile_loadconfig(&c);
}

enum { M = 384, N = 1024, K = 3072, REPEATS = 10 };
static double results[2][8];

static void *probe(void *arg) {
    int slot = (int)(intptr_t)arg;
    configure();
    uint16_t *a = aligned_alloc(64, (size_t)M * K * 2), *b = aligned_alloc(64, (size_t)N * K * 2);
    float *c = aligned_alloc(64, (size_t)M * N * 4);
    for (long i = 0; i < (long)M * K; i++) a[i] = 0x3f80;  // 1.0
    for (long i = 0; i < (long)N * K; i++) b[i] = 0x3c00;  // 2^-7
    // (1) registers only.
    _tile_loadd(4, a, 64); _tile_loadd(5, a + 512, 64); _tile_loadd(6, b, 64); _tile_loadd(7, b + 512, 64);
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    long iterations = 2000000;
    double t = now();
    for (long i = 0; i < iterations; i++) {
        _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
    }
    t = now() - t;
    results[slot][0] = iterations * 4.0 * 16 * 16 * 32 * 2 / t / 1e9;
    // (2) a GEMM over packed panels: A panel (32 rows) walks all of k for each 32-column B panel.
    double best = 1e9;
    for (int r = 0; r < REPEATS; r++) {
        t = now();
        for (long nb = 0; nb < N; nb += 32) {
            const uint16_t *bp = b + nb * K;
            for (long mb = 0; mb < M; mb += 32) {
                const uint16_t *ap = a + mb * K;
                _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
                for (long k = 0; k < K; k += 32) {
                    _tile_loadd(4, ap, 64); _tile_loadd(5, ap + 512, 64);
                    _tile_loadd(6, bp + k * 32, 64); _tile_loadd(7, bp + k * 32 + 512, 64);
                    ap += 1024;
                    _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
                }
                float *cp = c + mb * N + nb;
                _tile_stored(0, cp, N * 4); _tile_stored(1, cp + 16, N * 4);
                _tile_stored(2, cp + 16 * N, N * 4); _tile_stored(3, cp + 16 * N + 16, N * 4);
            }
        }
        t = now() - t;
        if (t < best) best = t;
    }
    results[slot][1] = 2.0 * M * N * K / best / 1e9;
    _tile_release();
    free(a); free(b); free(c);
    return NULL;
}

int main(void) {
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) != 0) {
        fprintf(stderr, "the kernel refused AMX tile data (no AMX here?)\n");
        return 1;
    }
    for (int threads = 1; threads <= 2; threads++) {
        pthread_t t[2];
        for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, probe, (void *)(intptr_t)i);
        for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
        for (int i = 0; i < threads; i++)
            printf("threads %d, thread %d: TDPBF16PS on registers %7.1f GFLOP/s (/6: %6.1f); "
                   "2x2-tile GEMM from L2 %7.1f GFLOP/s (/6: %6.1f)\n", threads, i,
                   results[i][0], results[i][0] / 6, results[i][1], results[i][1] / 6);
    }
    return 0;
}
