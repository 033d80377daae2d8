using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Parity.Backends.Reference;

/// <summary>
/// C[m, j] = sum over k of A(m, k) B(k, j) (+ bias[j]), the one matrix product behind every linear layer.
/// Every output element is one scalar chain: acc = 0; acc = acc + a*b for k = 0, 1, ..., K-1 (multiply, round,
/// add, round: never fused), then + bias. That chain is the reference's definition of the product; the kernels
/// below only choose which elements are computed together, never the order of a sum.
/// </summary>
/// <remarks>
/// The fast path is the classic register-blocked product (GotoBLAS/BLIS): both operands are first packed into
/// contiguous panels (A in blocks of <see cref="TileRows"/> rows, k-major; B in panels of two Vector256 widths,
/// k-major; both zero-padded), then a micro-kernel keeps a <see cref="TileRows"/> x 2-vector tile of C in twelve
/// registers while it streams k, so each loaded B vector feeds six multiply-adds. A tile of C is computed by one
/// thread in one pass over k; work items are disjoint tiles, so results are bit-identical on any thread count, on
/// every run, and equal to <see cref="MultiplyScalar{T}"/> (the fallback without 256-bit SIMD) on any machine.
/// Multiply and add stay separate instructions: a fused multiply-add would round once per term instead of twice and
/// change every bit of the oracle's traces (and of the native backend's CPU accelerator, which reproduces this chain).
/// On AMD Zen the separate add runs on its own pipes, so the pair issues at the FMA rate.
/// </remarks>
internal static unsafe class MatrixProduct
{
    /// <summary>Rows of C per micro-kernel tile (and per packed block of A).</summary>
    internal const int TileRows = 6;

    // Below this many multiply-adds the product runs on the calling thread.
    private const long ParallelThreshold = 1 << 18;

    /// <summary>True when the packed SIMD kernel runs; otherwise <see cref="MultiplyScalar{T}"/> does, with the same bits.</summary>
    internal static bool Vectorized => Vector256.IsHardwareAccelerated;

    /// <summary>Columns of C per micro-kernel tile: two Vector256 of T (16 float32, 8 float64).</summary>
    internal static int TileColumns<T>() => 2 * Vector256<T>.Count;

    /// <summary>
    /// A is read as a[m * aRow + k * aCol] and B as b[k * bRow + j * bCol] (so a transposed operand needs no copy);
    /// C is row-major [M, N] with row length <paramref name="ldc"/>; an empty <paramref name="bias"/> means none. Every
    /// element the kernels touch is checked to lie inside its span once, here, before the pointer loops run.
    /// </summary>
    public static void Multiply<T>(ReadOnlySpan<T> a, nint aRow, nint aCol, ReadOnlySpan<T> b, nint bRow, nint bCol, Span<T> c, int ldc, ReadOnlySpan<T> bias,
        int m, int n, int k, ParallelOptions parallel)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckOperands(a.Length, aRow, aCol, b.Length, bRow, bCol, c.Length, ldc, bias.Length, m, n, k);
        if (m == 0 || n == 0) return;
        fixed (T* ap = a, bp = b, cp = c, biasp = bias)
        {
            var product = new Operands<T>(ap, aRow, aCol, bp, bRow, bCol, cp, ldc, bias.IsEmpty ? null : biasp, m, n, k);
            if (Vectorized) MultiplyPacked(product, parallel);
            else ScalarChains(product);
        }
    }

    /// <summary>The same product by the scalar chain alone: the fallback without SIMD, and the definition the kernels are tested against.</summary>
    internal static void MultiplyScalar<T>(ReadOnlySpan<T> a, nint aRow, nint aCol, ReadOnlySpan<T> b, nint bRow, nint bCol, Span<T> c, int ldc, ReadOnlySpan<T> bias,
        int m, int n, int k)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckOperands(a.Length, aRow, aCol, b.Length, bRow, bCol, c.Length, ldc, bias.Length, m, n, k);
        if (m == 0 || n == 0) return;
        fixed (T* ap = a, bp = b, cp = c, biasp = bias)
            ScalarChains(new Operands<T>(ap, aRow, aCol, bp, bRow, bCol, cp, ldc, bias.IsEmpty ? null : biasp, m, n, k));
    }

    private static void CheckOperands(int aLength, nint aRow, nint aCol, int bLength, nint bRow, nint bCol, int cLength, int ldc, int biasLength, int m, int n, int k)
    {
        if (m < 0 || n < 0 || k < 0 || aRow < 0 || aCol < 0 || bRow < 0 || bCol < 0 || ldc < n)
            throw new ArgumentException($"invalid product dimensions m={m} n={n} k={k}, strides aRow={aRow} aCol={aCol} bRow={bRow} bCol={bCol} ldc={ldc}");
        if (m == 0 || n == 0) return;
        // The last element each operand's loops reach, in 64-bit arithmetic so no product wraps.
        RequireExtent(cLength, (m - 1L) * ldc + n, "C");
        if (k > 0)
        {
            RequireExtent(aLength, (m - 1L) * aRow + (k - 1L) * aCol + 1, "A");
            RequireExtent(bLength, (k - 1L) * bRow + (n - 1L) * bCol + 1, "B");
        }
        if (biasLength != 0) RequireExtent(biasLength, n, "bias");
    }

    private static void RequireExtent(int length, long needed, string operand)
    {
        if (needed > length) throw new ArgumentException($"matrix product: operand {operand} holds {length} elements; the product reads or writes {needed}");
    }

    /// <summary>The pointers and shape of one product, checked by <see cref="CheckOperands"/>.</summary>
    private readonly struct Operands<T>(T* a, nint aRow, nint aCol, T* b, nint bRow, nint bCol, T* c, int ldc, T* bias, int m, int n, int k)
        where T : unmanaged
    {
        public readonly T* A = a, B = b, C = c, Bias = bias;
        public readonly nint ARow = aRow, ACol = aCol, BRow = bRow, BCol = bCol;
        public readonly int Ldc = ldc, M = m, N = n, K = k;
    }

    private static void ScalarChains<T>(Operands<T> p)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < p.M; i++)
        {
            for (int j = 0; j < p.N; j++)
            {
                T acc = T.Zero;
                for (int kk = 0; kk < p.K; kk++) acc += p.A[i * p.ARow + kk * p.ACol] * p.B[kk * p.BRow + j * p.BCol];
                if (p.Bias != null) acc += p.Bias[j];
                p.C[(nint)i * p.Ldc + j] = acc;
            }
        }
    }

    private static void MultiplyPacked<T>(Operands<T> p, ParallelOptions parallel)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int nr = TileColumns<T>();
        int blocks = (p.M + TileRows - 1) / TileRows, panels = (p.N + nr - 1) / nr;
        long blockSize = (long)p.K * TileRows, panelSize = (long)p.K * nr;
        T[] packedA = ArrayPool<T>.Shared.Rent(checked((int)(blocks * blockSize)));
        T[] packedB = ArrayPool<T>.Shared.Rent(checked((int)(panels * panelSize)));
        T[] packedBias = ArrayPool<T>.Shared.Rent(panels * nr);
        try
        {
            fixed (T* pa = packedA, pb = packedB, pbias = packedBias)
            {
                PackA(p, pa);
                PackB(p, pb, nr);
                if (p.Bias != null)
                {
                    new ReadOnlySpan<T>(p.Bias, p.N).CopyTo(packedBias);
                    packedBias.AsSpan(p.N, panels * nr - p.N).Clear();
                }
                T* bias = p.Bias == null ? null : pbias;
                nint aBase = (nint)pa, bBase = (nint)pb, biasBase = (nint)bias;
                var product = p;

                // The operand re-read for every tile of the other is the smaller one, so it stays in cache:
                // rows outer when B is smaller (the forward x W^T), panels outer when A is (the weight gradient dy^T x).
                bool rowsOuter = blockSize * blocks >= panelSize * panels;
                int outer = rowsOuter ? blocks : panels, inner = rowsOuter ? panels : blocks;
                void Item(int o)
                {
                    for (int i = 0; i < inner; i++)
                    {
                        int block = rowsOuter ? o : i, panel = rowsOuter ? i : o;
                        Tile(product, (T*)aBase + block * blockSize, (T*)bBase + panel * panelSize, (T*)biasBase, block, panel, nr);
                    }
                }
                // One core (a process pinned by taskset, a one-CPU container): pool threads would only take turns on it.
                if ((long)p.M * p.N * p.K < ParallelThreshold || parallel.MaxDegreeOfParallelism == 1 || outer == 1 || Environment.ProcessorCount == 1)
                {
                    for (int o = 0; o < outer; o++) Item(o);
                }
                else
                {
                    Parallel.For(0, outer, parallel, Item);
                }
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(packedBias);
            ArrayPool<T>.Shared.Return(packedB);
            ArrayPool<T>.Shared.Return(packedA);
        }
    }

    /// <summary>A into blocks of <see cref="TileRows"/> rows: block r holds A(r*6 + i, k) at [k * 6 + i]; rows past M are zero.</summary>
    private static void PackA<T>(Operands<T> p, T* packed)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T** rowsOf = stackalloc T*[TileRows];
        for (int row0 = 0; row0 < p.M; row0 += TileRows)
        {
            int rows = Math.Min(TileRows, p.M - row0);
            for (int i = 0; i < rows; i++) rowsOf[i] = p.A + (row0 + i) * p.ARow;
            if (rows == TileRows)
            {
                // k outer, so the packed block is written in order while six rows of A are read in step.
                nint col = p.ACol;
                T* r0 = rowsOf[0], r1 = rowsOf[1], r2 = rowsOf[2], r3 = rowsOf[3], r4 = rowsOf[4], r5 = rowsOf[5];
                for (int kk = 0; kk < p.K; kk++, packed += TileRows)
                {
                    nint at = kk * col;
                    packed[0] = r0[at]; packed[1] = r1[at]; packed[2] = r2[at];
                    packed[3] = r3[at]; packed[4] = r4[at]; packed[5] = r5[at];
                }
                continue;
            }
            for (int kk = 0; kk < p.K; kk++, packed += TileRows)
                for (int i = 0; i < TileRows; i++) packed[i] = i < rows ? rowsOf[i][kk * p.ACol] : T.Zero;
        }
    }

    /// <summary>B into panels of <paramref name="nr"/> columns: panel q holds B(k, q*nr + j) at [k * nr + j]; columns past N are zero.</summary>
    private static void PackB<T>(Operands<T> p, T* packed, int nr)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int w = Vector256<T>.Count;
        for (int col0 = 0; col0 < p.N; col0 += nr)
        {
            int cols = Math.Min(nr, p.N - col0);
            for (int kk = 0; kk < p.K; kk++, packed += nr)
            {
                T* src = p.B + kk * p.BRow + col0 * p.BCol;
                if (p.BCol == 1 && cols == nr)
                {
                    Vector256.Load(src).Store(packed);
                    Vector256.Load(src + w).Store(packed + w);
                    continue;
                }
                for (int j = 0; j < cols; j++) packed[j] = src[j * p.BCol];
                for (int j = cols; j < nr; j++) packed[j] = T.Zero;
            }
        }
    }

    /// <summary>One tile of C; a tile that overhangs M or N is computed into a scratch tile and its valid part copied.</summary>
    private static void Tile<T>(Operands<T> p, T* a, T* b, T* bias, int block, int panel, int nr)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int row0 = block * TileRows, col0 = panel * nr;
        int rows = Math.Min(TileRows, p.M - row0), cols = Math.Min(nr, p.N - col0);
        T* panelBias = bias == null ? null : bias + col0;
        T* c = p.C + (nint)row0 * p.Ldc + col0;
        if (rows == TileRows && cols == nr)
        {
            Kernel(a, b, p.K, c, p.Ldc, panelBias);
            return;
        }
        T* scratch = stackalloc T[TileRows * nr];
        Kernel(a, b, p.K, scratch, nr, panelBias);
        for (int i = 0; i < rows; i++)
            new ReadOnlySpan<T>(scratch + i * nr, cols).CopyTo(new Span<T>(c + (nint)i * p.Ldc, cols));
    }

    /// <summary>
    /// The micro-kernel: C[6, 2 vectors] = packed A block times packed B panel (+ bias), twelve accumulators in
    /// registers; per k, two vector loads of B and six broadcasts of A feed twelve multiply-adds.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel<T>(T* a, T* b, int k, T* c, nint ldc, T* bias)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int w = Vector256<T>.Count;
        // Unrolled by hand: twelve named accumulators stay in registers, where an indexed array would live in memory.
        Vector256<T> c00 = Vector256<T>.Zero, c01 = Vector256<T>.Zero, c10 = Vector256<T>.Zero, c11 = Vector256<T>.Zero;
        Vector256<T> c20 = Vector256<T>.Zero, c21 = Vector256<T>.Zero, c30 = Vector256<T>.Zero, c31 = Vector256<T>.Zero;
        Vector256<T> c40 = Vector256<T>.Zero, c41 = Vector256<T>.Zero, c50 = Vector256<T>.Zero, c51 = Vector256<T>.Zero;
        for (int kk = 0; kk < k; kk++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + w);
            var a0 = Vector256.Create(a[0]);
            c00 += a0 * b0;
            c01 += a0 * b1;
            var a1 = Vector256.Create(a[1]);
            c10 += a1 * b0;
            c11 += a1 * b1;
            var a2 = Vector256.Create(a[2]);
            c20 += a2 * b0;
            c21 += a2 * b1;
            var a3 = Vector256.Create(a[3]);
            c30 += a3 * b0;
            c31 += a3 * b1;
            var a4 = Vector256.Create(a[4]);
            c40 += a4 * b0;
            c41 += a4 * b1;
            var a5 = Vector256.Create(a[5]);
            c50 += a5 * b0;
            c51 += a5 * b1;
            a += TileRows;
            b += 2 * w;
        }
        if (bias != null)
        {
            var bias0 = Vector256.Load(bias);
            var bias1 = Vector256.Load(bias + w);
            c00 += bias0; c01 += bias1; c10 += bias0; c11 += bias1; c20 += bias0; c21 += bias1;
            c30 += bias0; c31 += bias1; c40 += bias0; c41 += bias1; c50 += bias0; c51 += bias1;
        }
        c00.Store(c); c01.Store(c + w); c += ldc;
        c10.Store(c); c11.Store(c + w); c += ldc;
        c20.Store(c); c21.Store(c + w); c += ldc;
        c30.Store(c); c31.Store(c + w); c += ldc;
        c40.Store(c); c41.Store(c + w); c += ldc;
        c50.Store(c); c51.Store(c + w);
    }
}
