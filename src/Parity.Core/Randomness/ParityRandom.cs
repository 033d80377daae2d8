namespace Parity.Randomness;

/// <summary>
/// The one seeded generator of the harness. Algorithm, fixed so traces are stable across platforms,
/// runtimes and releases (docs/spec.md, "Randomness"):
/// <list type="bullet">
/// <item>state: xoshiro256** (Blackman and Vigna, 2018) seeded by four SplitMix64 outputs of the seed;</item>
/// <item>uniform double in [0,1): the top 53 bits of a 64-bit output times 2^-53;</item>
/// <item>standard normal: Box-Muller on two uniforms (u1 shifted into (0,1]), cosine branch only, so
/// every normal consumes exactly two outputs;</item>
/// <item>streams: <see cref="Derive"/> hashes a label into a new seed, so adding a draw in one stream
/// (one layer's weights, one epoch's shuffle) never shifts another.</item>
/// </list>
/// </summary>
public sealed class ParityRandom
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>Creates a generator from a 64-bit seed.</summary>
    public ParityRandom(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix64(ref x);
        _s1 = SplitMix64(ref x);
        _s2 = SplitMix64(ref x);
        _s3 = SplitMix64(ref x);
    }

    /// <summary>A generator for the named stream below <paramref name="seed"/>; same (seed, label) gives the same stream.</summary>
    public static ParityRandom Derive(ulong seed, string label)
    {
        // FNV-1a over the UTF-16 code units of the label, mixed with the seed by SplitMix64.
        ulong h = 14695981039346656037UL;
        foreach (char c in label)
        {
            h ^= c;
            h *= 1099511628211UL;
        }
        ulong x = seed ^ h;
        return new ParityRandom(SplitMix64(ref x));
    }

    /// <summary>Next 64 random bits (xoshiro256**).</summary>
    public ulong NextUInt64()
    {
        ulong result = RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / 9007199254740992.0);

    /// <summary>Uniform in [low, high).</summary>
    public double NextUniform(double low, double high) => low + (high - low) * NextDouble();

    /// <summary>Standard normal by Box-Muller (cosine branch).</summary>
    public double NextNormal()
    {
        double u1 = 1.0 - NextDouble(); // (0, 1]: log is finite
        double u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>Uniform integer in [0, n) without modulo bias (Lemire's rejection).</summary>
    public int NextInt(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        ulong bound = (ulong)n;
        ulong threshold = (0UL - bound) % bound;
        while (true)
        {
            ulong r = NextUInt64();
            UInt128 m = (UInt128)r * bound;
            if ((ulong)m >= threshold) return (int)(m >> 64);
        }
    }

    /// <summary>A Fisher-Yates permutation of 0..n-1.</summary>
    public int[] Permutation(int n)
    {
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }

    private static ulong SplitMix64(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));
}
