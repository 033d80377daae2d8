using System.Numerics;
using ILGPU;
using ILGPU.Runtime;
using Parity.Backends.Native.Kernels;
using Parity.Backends.Reference;

namespace Parity.Backends.Native.Tests;

/// <summary>
/// The register-blocked product (<see cref="BlockedProduct"/>, 128 x 128 tiles, 8 x 8 per thread) on the CPU accelerator:
/// against <see cref="ReferenceOps"/> and bit for bit against the 16 x 16 <see cref="TiledProduct"/>, which sums in the
/// same order. Shapes straddle the 128 edges (130 rows, 137 and 129 columns) and the 8-wide inner steps (19, 21), so
/// partial tiles, the zero padding and every epilogue (bias, fused relu, relu mask, ones column, accumulation) and
/// all three operand layouts (x W^T, dY W, dY^T X) run through both load mappings.
/// </summary>
[TestFixture(typeof(float))]
[TestFixture(typeof(double))]
public sealed class BlockedProductTests<T>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    private const int Rows = 130, In = 21, Out = 137;
    private static readonly double Tolerance = typeof(T) == typeof(float) ? 2e-5 : 1e-12;

    private Context _context = null!;
    private Accelerator _accelerator = null!;
    private NativeKernels<T> _blocked = null!;
    private NativeKernels<T> _tiled = null!;
    private readonly List<MemoryBuffer> _buffers = [];

    [OneTimeSetUp]
    public void CreateDevice()
    {
        _context = NativeDevices.CreateContext();
        (var device, _) = NativeDevices.Choose(_context, "cpu");
        _accelerator = device.CreateAccelerator(_context);
        _blocked = new NativeKernels<T>(_accelerator, 1) { BlockedProductMinimumTiles = 0 };
        _tiled = new NativeKernels<T>(_accelerator, 1) { BlockedProductMinimumTiles = int.MaxValue };
    }

    [OneTimeTearDown]
    public void DisposeDevice()
    {
        _blocked.Dispose();
        _tiled.Dispose();
        _accelerator.Dispose();
        _context.Dispose();
    }

    [TearDown]
    public void FreeBuffers()
    {
        foreach (var b in _buffers) b.Dispose();
        _buffers.Clear();
    }

    [Test]
    public void The_launch_picks_the_kernel_by_the_number_of_128_tiles()
    {
        using var kernels = new NativeKernels<T>(_accelerator, 1) { BlockedProductMinimumTiles = 9 };
        Assert.That(kernels.UsesBlockedProduct(384, 384), Is.True, "3 x 3 tiles");
        Assert.That(kernels.UsesBlockedProduct(257, 257), Is.True, "partial tiles count");
        Assert.That(kernels.UsesBlockedProduct(256, 256), Is.False, "2 x 2 tiles");
        Assert.That(kernels.UsesBlockedProduct(1000, 100), Is.False, "8 x 1 tiles (784-100-100-10 at batch 1000)");
        Assert.That(_tiled.UsesBlockedProduct(4096, 4096), Is.False);
        Assert.That(_blocked.UsesBlockedProduct(1, 1), Is.True);
    }

    [Test]
    public void Forward_with_bias_and_fused_relu_matches_the_reference_and_the_tiled_kernel_bit_for_bit()
    {
        T[] x = Random(Rows * In, 1), w = Random(Out * In, 2), b = Random(Out, 3);
        T[] expected = new T[Rows * Out], expectedRelu = new T[Rows * Out];
        ReferenceOps.LinearForward<T>(x, w, b, expected, Rows, In, Out);
        ReferenceOps.ReluForward<T>(expected, expectedRelu);

        var (y, relu) = (Poisoned(Rows * Out), Poisoned(Rows * Out));
        var (tiledY, tiledRelu) = (Poisoned(Rows * Out), Poisoned(Rows * Out));
        _blocked.LinearForward(Upload(x), Upload(w), Upload(b), y, Rows, In, Out, relu);
        _tiled.LinearForward(Upload(x), Upload(w), Upload(b), tiledY, Rows, In, Out, tiledRelu);
        AssertClose(y, expected, "y");
        AssertClose(relu, expectedRelu, "relu(y)");
        AssertIdentical(y, tiledY, "y");
        AssertIdentical(relu, tiledRelu, "relu(y)");
    }

    [Test]
    public void Input_gradient_with_the_relu_mask_matches_the_reference_and_the_tiled_kernel_bit_for_bit()
    {
        // dX [Rows, In] = dY [Rows, Out] W [Out, In]: here the product's columns are In = 129 (one past a tile edge).
        const int inWidth = 129, outWidth = 19;
        T[] x = Random(Rows * inWidth, 4), w = Random(outWidth * inWidth, 5), dy = Random(Rows * outWidth, 6);
        T[] reluOutput = new T[Rows * inWidth];
        ReferenceOps.ReluForward<T>(x, reluOutput);
        T[] dx = new T[Rows * inWidth], dw = new T[outWidth * inWidth], db = new T[outWidth], masked = new T[Rows * inWidth];
        ReferenceOps.LinearBackward<T>(x, w, dy, dx, dw, db, Rows, inWidth, outWidth);
        ReferenceOps.ReluBackward<T>(reluOutput, dx, masked);

        var (actualDx, actualMasked) = (Poisoned(Rows * inWidth), Poisoned(Rows * inWidth));
        var (tiledDx, tiledMasked) = (Poisoned(Rows * inWidth), Poisoned(Rows * inWidth));
        _blocked.LinearInputGradient(Upload(dy), Upload(w), actualDx, Rows, inWidth, outWidth, Upload(reluOutput), actualMasked);
        _tiled.LinearInputGradient(Upload(dy), Upload(w), tiledDx, Rows, inWidth, outWidth, Upload(reluOutput), tiledMasked);
        AssertClose(actualDx, dx, "dx");
        AssertClose(actualMasked, masked, "relu-masked dx");
        AssertIdentical(actualDx, tiledDx, "dx");
        AssertIdentical(actualMasked, tiledMasked, "relu-masked dx");
    }

    [Test]
    public void Parameter_gradients_with_the_ones_column_match_the_reference_accumulate_and_equal_the_tiled_kernel()
    {
        // dW [Out, In] = dY^T X with db in the ones column: columns In + 1 = 128 + 1 cross the tile edge by the ones column.
        const int inWidth = 128, outWidth = 131, n = 19;
        T[] x = Random(n * inWidth, 7), w = Random(outWidth * inWidth, 8), dy1 = Random(n * outWidth, 9), dy2 = Random(n * outWidth, 10);
        T[] dw1 = new T[outWidth * inWidth], db1 = new T[outWidth], dw2 = new T[outWidth * inWidth], db2 = new T[outWidth];
        ReferenceOps.LinearBackward<T>(x, w, dy1, [], dw1, db1, n, inWidth, outWidth);
        ReferenceOps.LinearBackward<T>(x, w, dy2, [], dw2, db2, n, inWidth, outWidth);

        var (dw, db) = (Poisoned(outWidth * inWidth), Poisoned(outWidth));
        var (tiledDw, tiledDb) = (Poisoned(outWidth * inWidth), Poisoned(outWidth));
        var xView = Upload(x);
        _blocked.LinearParameterGradients(xView, Upload(dy1), dw, db, n, inWidth, outWidth, accumulate: false);
        _tiled.LinearParameterGradients(xView, Upload(dy1), tiledDw, tiledDb, n, inWidth, outWidth, accumulate: false);
        AssertClose(dw, dw1, "dW");
        AssertClose(db, db1, "db");
        AssertIdentical(dw, tiledDw, "dW");
        AssertIdentical(db, tiledDb, "db");
        _blocked.LinearParameterGradients(xView, Upload(dy2), dw, db, n, inWidth, outWidth, accumulate: true);
        AssertClose(dw, dw1.Zip(dw2, (a, c) => a + c).ToArray(), "dW summed over two calls");
        AssertClose(db, db1.Zip(db2, (a, c) => a + c).ToArray(), "db summed over two calls");
    }

    private ArrayView<T> Upload(T[] values)
    {
        var buffer = _accelerator.Allocate1D(values);
        _buffers.Add(buffer);
        return buffer.View;
    }

    // NaN everywhere first: an element the kernel does not write fails the comparison (METHOD.md: poison the output).
    private ArrayView<T> Poisoned(int length) => Upload(Enumerable.Repeat(T.NaN, length).ToArray());

    private static T[] Random(int length, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => T.CreateChecked(2 * random.NextDouble() - 1)).ToArray();
    }

    private static void AssertIdentical(ArrayView<T> actual, ArrayView<T> expected, string what) =>
        Assert.That(actual.GetAsArray(), Is.EqualTo(expected.GetAsArray()), $"{what}: blocked and tiled products differ");

    private static void AssertClose(ArrayView<T> actualView, T[] expected, string what)
    {
        var actual = actualView.GetAsArray();
        Assert.That(actual, Has.Length.EqualTo(expected.Length), what);
        double scale = Math.Max(1, expected.Max(e => Math.Abs(double.CreateChecked(e))));
        for (int i = 0; i < expected.Length; i++)
        {
            double a = double.CreateChecked(actual[i]), e = double.CreateChecked(expected[i]);
            Assert.That(Math.Abs(a - e), Is.LessThanOrEqualTo(Tolerance * scale), $"{what}[{i}]: native {a:R}, reference {e:R}");
        }
    }
}
