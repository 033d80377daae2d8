using System.Numerics;
using BenchmarkDotNet.Attributes;
using Parity.Backends.Reference;
using Parity.Randomness;

namespace Parity.Benchmarks;

/// <summary>
/// The reference's matrix product on one thread, on the six products of a seed000-shared-bn step (784-100-100-10,
/// batch 1000: the forward products x W^T, the weight gradients dy^T x and the input gradients dy W) and on a square
/// 512 product. OperationsPerInvoke is 2 M N K, so the GFLOP/s column reads directly.
/// </summary>
[GenericTypeArguments(typeof(float))]
[GenericTypeArguments(typeof(double))]
public class ProductBenchmarks<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private const int Batch = 1000, Inputs = 784, Hidden = 100, Classes = 10, Square = 512;
    private static readonly ParallelOptions OneThread = new() { MaxDegreeOfParallelism = 1 };
    private T[] _x = [], _w1 = [], _b1 = [], _h = [], _w3 = [], _dyHidden = [], _dyClasses = [], _out = [], _s1 = [], _s2 = [];

    [GlobalSetup]
    public void Fill()
    {
        var rng = new ParityRandom(1);
        T[] Random(int count) => Enumerable.Range(0, count).Select(_ => T.CreateTruncating(rng.NextNormal())).ToArray();
        _x = Random(Batch * Inputs);
        _w1 = Random(Hidden * Inputs);
        _b1 = Random(Hidden);
        _h = Random(Batch * Hidden);
        _w3 = Random(Classes * Hidden);
        _dyHidden = Random(Batch * Hidden);
        _dyClasses = Random(Batch * Classes);
        _s1 = Random(Square * Square);
        _s2 = Random(Square * Square);
        _out = new T[Math.Max(Batch * Inputs, Square * Square)];
    }

    /// <summary>l1 forward: x [1000, 784] W1^T (W1 [100, 784] read transposed) + b1.</summary>
    [Benchmark(OperationsPerInvoke = 2 * Batch * Hidden * Inputs)]
    public void ForwardL1() => MatrixProduct.Multiply<T>(_x, Inputs, 1, _w1, 1, Inputs, _out, Hidden, _b1, Batch, Hidden, Inputs, OneThread);

    /// <summary>l1 weight gradient: dy^T [100, 1000] (dy read transposed) x [1000, 784].</summary>
    [Benchmark(OperationsPerInvoke = 2 * Hidden * Inputs * Batch)]
    public void WeightGradientL1() => MatrixProduct.Multiply<T>(_dyHidden, 1, Hidden, _x, Inputs, 1, _out, Inputs, [], Hidden, Inputs, Batch, OneThread);

    /// <summary>l2 forward: h [1000, 100] W2^T [100, 100].</summary>
    [Benchmark(OperationsPerInvoke = 2 * Batch * Hidden * Hidden)]
    public void ForwardL2() => MatrixProduct.Multiply<T>(_h, Hidden, 1, _w1, 1, Hidden, _out, Hidden, [], Batch, Hidden, Hidden, OneThread);

    /// <summary>l2 input gradient: dy [1000, 100] W2 [100, 100].</summary>
    [Benchmark(OperationsPerInvoke = 2 * Batch * Hidden * Hidden)]
    public void InputGradientL2() => MatrixProduct.Multiply<T>(_dyHidden, Hidden, 1, _w1, Hidden, 1, _out, Hidden, [], Batch, Hidden, Hidden, OneThread);

    /// <summary>l3 forward: h [1000, 100] W3^T [100, 10]: ten columns fill 10 of a tile's 16 (float32) lanes.</summary>
    [Benchmark(OperationsPerInvoke = 2 * Batch * Classes * Hidden)]
    public void ForwardL3() => MatrixProduct.Multiply<T>(_h, Hidden, 1, _w3, 1, Hidden, _out, Classes, [], Batch, Classes, Hidden, OneThread);

    /// <summary>l3 input gradient: dy [1000, 10] W3 [10, 100]: ten multiply-adds per element.</summary>
    [Benchmark(OperationsPerInvoke = 2 * Batch * Hidden * Classes)]
    public void InputGradientL3() => MatrixProduct.Multiply<T>(_dyClasses, Classes, 1, _w3, Hidden, 1, _out, Hidden, [], Batch, Hidden, Classes, OneThread);

    /// <summary>A square 512 product.</summary>
    [Benchmark(OperationsPerInvoke = 2 * Square * Square * Square)]
    public void Square512() => MatrixProduct.Multiply<T>(_s1, Square, 1, _s2, Square, 1, _out, Square, [], Square, Square, Square, OneThread);

    /// <summary>l1 forward by the scalar chain (the fallback without SIMD): the speed the packed kernel replaces.</summary>
    [Benchmark(OperationsPerInvoke = 2 * Batch * Hidden * Inputs)]
    public void ForwardL1Scalar() => MatrixProduct.MultiplyScalar<T>(_x, Inputs, 1, _w1, 1, Inputs, _out, Hidden, _b1, Batch, Hidden, Inputs);
}
