using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using BenchmarkDotNet.Attributes;

namespace Parity.Benchmarks;

/// <summary>
/// The core's multiply-add ceiling, measured: twelve independent 256-bit FMA chains (more than latency times pipes,
/// 4 cycles x 2 pipes on AMD Zen 4) with no memory traffic. FMA instructions per second divided by the pipe count
/// gives the clock the core really ran at; the product kernel's GFLOP/s are read against these figures.
/// </summary>
public class PeakBenchmarks
{
    private const int Iterations = 1 << 16, Chains = 12;

    [Benchmark(OperationsPerInvoke = Iterations * Chains * 2 * 8)]
    public float FusedMultiplyAddFloat32() => Chain(Vector256.Create(0.999f), Vector256.Create(1e-3f)).GetElement(0);

    [Benchmark(OperationsPerInvoke = Iterations * Chains * 2 * 4)]
    public double FusedMultiplyAddFloat64() => Chain(Vector256.Create(0.999), Vector256.Create(1e-3)).GetElement(0);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Vector256<T> Chain<T>(Vector256<T> m, Vector256<T> c)
        where T : unmanaged
    {
        if (!Fma.IsSupported) throw new PlatformNotSupportedException("no FMA on this CPU");
        Vector256<T> a0 = c, a1 = c, a2 = c, a3 = c, a4 = c, a5 = c, a6 = c, a7 = c, a8 = c, a9 = c, a10 = c, a11 = c;
        for (int i = 0; i < Iterations; i++)
        {
            a0 = MultiplyAdd(a0, m, c); a1 = MultiplyAdd(a1, m, c); a2 = MultiplyAdd(a2, m, c); a3 = MultiplyAdd(a3, m, c);
            a4 = MultiplyAdd(a4, m, c); a5 = MultiplyAdd(a5, m, c); a6 = MultiplyAdd(a6, m, c); a7 = MultiplyAdd(a7, m, c);
            a8 = MultiplyAdd(a8, m, c); a9 = MultiplyAdd(a9, m, c); a10 = MultiplyAdd(a10, m, c); a11 = MultiplyAdd(a11, m, c);
        }
        return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> MultiplyAdd<T>(Vector256<T> a, Vector256<T> b, Vector256<T> c)
        where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Fma.MultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>();
        return Fma.MultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
    }
}
