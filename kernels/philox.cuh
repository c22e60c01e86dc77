// Philox4x32-10, the same function as src/BrainSeg.Engine/Random/Philox.cs (the parity tests hold
// the two together): value q of the stream keyed by `seed` is word q % 4 of the 10-round output for
// counter (lo32(q / 4), hi32(q / 4), 0, 0) and key (lo32(seed), hi32(seed)).
#pragma once

__device__ __forceinline__ unsigned int philox_word(unsigned long long seed, unsigned long long index)
{
    const unsigned int M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
    const unsigned int W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    unsigned long long block = index >> 2;
    unsigned int c0 = (unsigned int)block, c1 = (unsigned int)(block >> 32), c2 = 0u, c3 = 0u;
    unsigned int k0 = (unsigned int)seed, k1 = (unsigned int)(seed >> 32);
    for (int round = 0; round < 10; round++)
    {
        if (round > 0) { k0 += W0; k1 += W1; }
        unsigned int hi0 = __umulhi(M0, c0), lo0 = M0 * c0;
        unsigned int hi1 = __umulhi(M1, c2), lo1 = M1 * c2;
        unsigned int n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    }
    switch (index & 3)
    {
        case 0: return c0;
        case 1: return c1;
        case 2: return c2;
        default: return c3;
    }
}
