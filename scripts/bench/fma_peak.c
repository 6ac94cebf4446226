// The arithmetic ceiling of this machine for Float32: AVX-512 fused multiply-adds on registers only,
// 24 independent chains per thread (enough to cover the FMA latency on two ports), on 1 and on 2
// threads. GEMM and training GFLOP/s read best as a fraction of this.
//
//     cc -O2 -mavx512f -pthread scripts/bench/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

enum { CHAINS = 24 };

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *spin(void *arg) {
    long iterations = (long)arg;
    __m512 acc[CHAINS];
    const __m512 a = _mm512_set1_ps(1.0000001f), b = _mm512_set1_ps(0.9999999f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iterations; it++)
#pragma GCC unroll 24
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    float sum = 0;
    for (int i = 0; i < CHAINS; i++) sum += _mm512_reduce_add_ps(acc[i]);
    return (void *)(long)(sum > 1e30f);  // keeps the chains alive
}

int main(void) {
    const long iterations = 40000000;
    for (int threads = 1; threads <= 2; threads++) {
        pthread_t t[2];
        double start = seconds();
        for (int i = 0; i < threads; i++) pthread_create(&t[i], 0, spin, (void *)iterations);
        for (int i = 0; i < threads; i++) pthread_join(t[i], 0);
        double flops = (double)threads * iterations * CHAINS * 32;  // 16 lanes x 2 flops per FMA
        printf("threads %d: %.1f GFLOP/s peak (512-bit FMA)\n", threads, flops / (seconds() - start) / 1e9);
    }
    return 0;
}
