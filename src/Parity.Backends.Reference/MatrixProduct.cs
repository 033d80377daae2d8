using System.Numerics;
using System.Runtime.CompilerServices;

namespace Parity.Backends.Reference;

/// <summary>
/// C[m, j] = sum over k of A(m, k) B[k, j] (+ bias[j]), the one matrix product behind every linear layer.
/// Vectorized ACROSS output columns j with register tiles of 4 rows by 2 vectors, so each output element
/// is still one scalar chain: acc = 0; acc = acc + a*b for k = 0, 1, ..., K-1 (multiply then add, never
/// fused), then + bias. The order does not depend on the tile an element falls in, on the SIMD width or on
/// threads: work items are disjoint tiles of C, each computed by one thread. Results are therefore
/// bit-identical on any thread count, and equal to the naive triple loop in the same precision.
/// </summary>
internal static unsafe class MatrixProduct
{
    private const int TileRows = 4;

    // Columns per work item: keeps the slice of B a tile streams (K x ChunkColumns) within L2.
    private const int ChunkColumns = 128;

    // Below this many multiply-adds the product runs on the calling thread.
    private const long ParallelThreshold = 1 << 18;

    /// <summary>
    /// A is read as a[m * aRow + k * aCol] (so a transposed operand needs no copy), B is row-major [K, N]
    /// with contiguous rows of length <paramref name="ldb"/>, C row-major [M, N] with row length <paramref name="ldc"/>;
    /// an empty <paramref name="bias"/> means none. Every element the kernels touch is checked to lie inside its span
    /// once, here, before the pointer loops run.
    /// </summary>
    public static void Multiply<T>(ReadOnlySpan<T> a, nint aRow, nint aCol, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc, ReadOnlySpan<T> bias,
        int m, int n, int k, ParallelOptions parallel)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (m < 0 || n < 0 || k < 0 || aRow < 0 || aCol < 0 || ldb < n || ldc < n)
            throw new ArgumentException($"invalid product dimensions m={m} n={n} k={k}, strides aRow={aRow} aCol={aCol} ldb={ldb} ldc={ldc}");
        if (m == 0 || n == 0) return;
        // The last element each operand's loops reach, in 64-bit arithmetic so no product wraps.
        RequireExtent(c.Length, (m - 1L) * ldc + n, "C");
        if (k > 0)
        {
            RequireExtent(a.Length, (m - 1L) * aRow + (k - 1L) * aCol + 1, "A");
            RequireExtent(b.Length, (k - 1L) * ldb + n, "B");
        }
        if (!bias.IsEmpty) RequireExtent(bias.Length, n, "bias");
        fixed (T* ap = a, bp = b, cp = c, biasp = bias)
            Multiply(ap, aRow, aCol, bp, ldb, cp, ldc, bias.IsEmpty ? null : biasp, m, n, k, parallel);
    }

    private static void RequireExtent(int length, long needed, string operand)
    {
        if (needed > length) throw new ArgumentException($"matrix product: operand {operand} holds {length} elements; the product reads or writes {needed}");
    }

    private static void Multiply<T>(T* a, nint aRow, nint aCol, T* b, int ldb, T* c, int ldc, T* bias, int m, int n, int k, ParallelOptions parallel)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (m == 0 || n == 0) return;
        int width = Vector<T>.Count;
        int rowBlocks = (m + TileRows - 1) / TileRows;
        int chunks = (n + ChunkColumns - 1) / ChunkColumns;
        int items = rowBlocks * chunks;

        // The last n % width columns: a copy of B's tail padded with zero columns to one full vector, so the
        // tail runs the same vector kernels (each valid lane is the same scalar chain; padding lanes are dropped).
        int tail = n % width;
        T[] padded = tail == 0 ? [] : GC.AllocateUninitializedArray<T>(checked(k * width + width), pinned: true);
        if (tail != 0)
        {
            padded.AsSpan().Clear();
            for (int kk = 0; kk < k; kk++)
                for (int t = 0; t < tail; t++) padded[kk * width + t] = b[(nint)kk * ldb + n - tail + t];
            if (bias != null)
                for (int t = 0; t < tail; t++) padded[k * width + t] = bias[n - tail + t];
        }
        nint pa = (nint)a, pb = (nint)b, pc = (nint)c, pbias = (nint)bias;

        void Item(int item)
        {
            // Row blocks vary fastest so consecutive items share a chunk of B.
            int row0 = item % rowBlocks * TileRows;
            int col0 = item / rowBlocks * ChunkColumns;
            int rows = Math.Min(TileRows, m - row0);
            int cols = Math.Min(ChunkColumns, n - col0);
            bool last = col0 + cols == n;
            Tile((T*)pa, aRow, aCol, (T*)pb, ldb, (T*)pc, ldc, (T*)pbias, row0, rows, col0, last ? cols - tail : cols, k);
            if (last && tail != 0)
            {
                fixed (T* tailB = padded)
                    TailTile((T*)pa, aRow, aCol, tailB, (T*)pc + n - tail, ldc, pbias == 0 ? null : tailB + k * width, row0, rows, tail, k);
            }
        }

        if ((long)m * n * k < ParallelThreshold || parallel.MaxDegreeOfParallelism == 1 || items == 1)
        {
            for (int i = 0; i < items; i++) Item(i);
            return;
        }
        Parallel.For(0, items, parallel, Item);
    }

    private static void Tile<T>(T* a, nint aRow, nint aCol, T* b, int ldb, T* c, int ldc, T* bias, int row0, int rows, int col0, int cols, int k)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = Vector<T>.Count;
        int end = col0 + cols; // a multiple of width away from col0 (the tail is handled by TailTile)
        int j = col0;
        if (rows == TileRows)
        {
            for (; j + 2 * width <= end; j += 2 * width) Kernel4x2(a + row0 * aRow, aRow, aCol, b + j, ldb, c + (nint)row0 * ldc + j, ldc, bias == null ? null : bias + j, k);
        }
        for (int r = 0; r < rows; r++)
        {
            T* aRowPtr = a + (row0 + r) * aRow;
            T* cRow = c + (nint)(row0 + r) * ldc;
            for (int jj = j; jj < end; jj += width) Kernel1x1(aRowPtr, aCol, b + jj, ldb, cRow + jj, bias == null ? null : bias + jj, k);
        }
    }

    private static void TailTile<T>(T* a, nint aRow, nint aCol, T* paddedB, T* c, int ldc, T* paddedBias, int row0, int rows, int tail, int k)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = Vector<T>.Count;
        T* lanes = stackalloc T[width];
        for (int r = 0; r < rows; r++)
        {
            Kernel1x1(a + (row0 + r) * aRow, aCol, paddedB, width, lanes, paddedBias, k);
            T* cRow = c + (nint)(row0 + r) * ldc;
            for (int t = 0; t < tail; t++) cRow[t] = lanes[t];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel4x2<T>(T* a, nint aRow, nint aCol, T* b, int ldb, T* c, int ldc, T* bias, int k)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = Vector<T>.Count;
        Vector<T> c00 = Vector<T>.Zero, c01 = Vector<T>.Zero, c10 = Vector<T>.Zero, c11 = Vector<T>.Zero;
        Vector<T> c20 = Vector<T>.Zero, c21 = Vector<T>.Zero, c30 = Vector<T>.Zero, c31 = Vector<T>.Zero;
        T* a0 = a, a1 = a + aRow, a2 = a + 2 * aRow, a3 = a + 3 * aRow;
        for (int kk = 0; kk < k; kk++)
        {
            T* bp = b + (nint)kk * ldb;
            var b0 = Unsafe.ReadUnaligned<Vector<T>>(bp);
            var b1 = Unsafe.ReadUnaligned<Vector<T>>(bp + width);
            nint ka = kk * aCol;
            var v0 = new Vector<T>(a0[ka]);
            c00 += v0 * b0;
            c01 += v0 * b1;
            var v1 = new Vector<T>(a1[ka]);
            c10 += v1 * b0;
            c11 += v1 * b1;
            var v2 = new Vector<T>(a2[ka]);
            c20 += v2 * b0;
            c21 += v2 * b1;
            var v3 = new Vector<T>(a3[ka]);
            c30 += v3 * b0;
            c31 += v3 * b1;
        }
        if (bias != null)
        {
            var bias0 = Unsafe.ReadUnaligned<Vector<T>>(bias);
            var bias1 = Unsafe.ReadUnaligned<Vector<T>>(bias + width);
            c00 += bias0; c01 += bias1; c10 += bias0; c11 += bias1;
            c20 += bias0; c21 += bias1; c30 += bias0; c31 += bias1;
        }
        Unsafe.WriteUnaligned(c, c00);
        Unsafe.WriteUnaligned(c + width, c01);
        Unsafe.WriteUnaligned(c + ldc, c10);
        Unsafe.WriteUnaligned(c + ldc + width, c11);
        Unsafe.WriteUnaligned(c + 2 * ldc, c20);
        Unsafe.WriteUnaligned(c + 2 * ldc + width, c21);
        Unsafe.WriteUnaligned(c + 3 * ldc, c30);
        Unsafe.WriteUnaligned(c + 3 * ldc + width, c31);
    }

    private static void Kernel1x1<T>(T* a, nint aCol, T* b, int ldb, T* c, T* bias, int k)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Vector<T> acc = Vector<T>.Zero;
        for (int kk = 0; kk < k; kk++)
            acc += new Vector<T>(a[kk * aCol]) * Unsafe.ReadUnaligned<Vector<T>>(b + (nint)kk * ldb);
        if (bias != null) acc += Unsafe.ReadUnaligned<Vector<T>>(bias);
        Unsafe.WriteUnaligned(c, acc);
    }
}
