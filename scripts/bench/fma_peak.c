// The arithmetic ceiling of this machine for Float32: fused multiply-adds on registers only, on 1
// and on 2 threads. GEMM and training GFLOP/s read best as a fraction of this. `-march=native`
// picks the widest vectors the CPU has: AVX-512 (24 chains of zmm) or AVX2 (12 chains of ymm, as
// many as fit the 16 registers), enough independent chains to cover the FMA latency on two ports.
//
//     cc -O2 -march=native -pthread scripts/bench/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#if defined(__AVX512F__)
enum { CHAINS = 24, LANES = 16 };
typedef __m512 vec;
#define SET1 _mm512_set1_ps
#define FMADD _mm512_fmadd_ps
#define WIDTH "512-bit"
static float reduce(vec v) { return _mm512_reduce_add_ps(v); }
#elif defined(__AVX2__) && defined(__FMA__)
enum { CHAINS = 12, LANES = 8 };
typedef __m256 vec;
#define SET1 _mm256_set1_ps
#define FMADD _mm256_fmadd_ps
#define WIDTH "256-bit"
static float reduce(vec v) {
    float f[8];
    _mm256_storeu_ps(f, v);
    return f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
}
#else
#error "needs AVX2 and FMA, or AVX-512 (compile with -march=native on such a CPU)"
#endif

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *spin(void *arg) {
    long iterations = (long)arg;
    vec acc[CHAINS];
    const vec a = SET1(1.0000001f), b = SET1(0.9999999f);
    for (int i = 0; i < CHAINS; i++) acc[i] = SET1((float)i);
    for (long it = 0; it < iterations; it++)
#pragma GCC unroll 24
        for (int i = 0; i < CHAINS; i++) acc[i] = FMADD(acc[i], a, b);
    float sum = 0;
    for (int i = 0; i < CHAINS; i++) sum += reduce(acc[i]);
    return (void *)(long)(sum > 1e30f);  // keeps the chains alive
}

int main(void) {
    const long iterations = 40000000;
    for (int threads = 1; threads <= 2; threads++) {
        pthread_t t[2];
        double start = seconds();
        for (int i = 0; i < threads; i++) pthread_create(&t[i], 0, spin, (void *)iterations);
        for (int i = 0; i < threads; i++) pthread_join(t[i], 0);
        double flops = (double)threads * iterations * CHAINS * LANES * 2;  // 2 flops per lane per FMA
        printf("threads %d: %.1f GFLOP/s peak (" WIDTH " FMA)\n", threads, flops / (seconds() - start) / 1e9);
    }
    return 0;
}
