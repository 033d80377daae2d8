using System.Numerics;
using ILGPU;

namespace Parity.Backends.Native.Kernels;

/// <summary>
/// The register-blocked product for large shapes (the 4096-wide benchmark): the same C = A B with the same strided
/// operands and epilogue as <see cref="TiledProduct"/>, but each group of 16 x 16 threads computes a
/// <see cref="BlockRows"/> x <see cref="BlockCols"/> tile of C and each thread an 8 x 8 sub-tile held in 64 registers,
/// so one pair of shared-memory reads feeds eight multiply-adds instead of one (the classic SGEMM blocking; a
/// per-thread array stays in registers only when every index is a constant, else it goes to local memory, hence the
/// unrolled names). Per step of <see cref="BlockInner"/> over the summed dimension each thread stages four elements
/// of A and four of B; the next step's elements are read from global memory into registers while this step computes.
/// The sum over the inner dimension still runs in index order for every element of C, so results are bit-identical
/// to <see cref="TiledProduct"/> on the same device.
/// </summary>
public static class BlockedProduct
{
    /// <summary>Rows of C per group.</summary>
    public const int BlockRows = 128;

    /// <summary>Columns of C per group.</summary>
    public const int BlockCols = 128;

    /// <summary>Inner-dimension elements staged per step.</summary>
    public const int BlockInner = 8;

    /// <summary>Group edge: 16 x 16 threads; thread (x, y) owns rows y + 16 i and columns x + 16 j, i, j &lt; 8.</summary>
    public const int Threads = 16;

    /// <summary>
    /// One <see cref="BlockRows"/> x <see cref="BlockCols"/> tile of C per group (grid X over columns, Y over rows).
    /// Loads are laid out for coalescing by which stride of each operand is 1: along a contiguous dimension, 32
    /// consecutive threads read 128 consecutive elements; along the other, pairs of threads read 8.
    /// </summary>
    /// <param name="a">A, read through <see cref="ProductShape.ARowStride"/> and <see cref="ProductShape.AInnerStride"/>.</param>
    /// <param name="b">B, read through <see cref="ProductShape.BInnerStride"/> and <see cref="ProductShape.BColStride"/>.</param>
    /// <param name="c">C [Rows, Cols], row-major.</param>
    /// <param name="bias">Bias [Cols] when <see cref="ProductShape.AddBias"/> is 1.</param>
    /// <param name="second">The fused second output [Rows, Cols] (see <see cref="SecondOutput"/>).</param>
    /// <param name="mask">The relu output whose sign masks the second output for <see cref="SecondOutput.ReluMask"/>.</param>
    /// <param name="rowSums">Receives the ones column [Rows] when <see cref="ProductShape.OnesColumn"/> is 1.</param>
    /// <param name="shape">Shape and epilogue.</param>
    public static void Product<T>(ArrayView<T> a, ArrayView<T> b, ArrayView<T> c, ArrayView<T> bias, ArrayView<T> second,
        ArrayView<T> mask, ArrayView<T> rowSums, ProductShape shape)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        // aTile[k * BlockRows + r] and bTile[k * BlockCols + col]: the inner index outermost, so the compute loop reads
        // a row of each (broadcast across the 16 threads of a row for A, 16 consecutive words for B: no bank conflicts).
        var aTile = SharedMemory.Allocate<T>(BlockInner * BlockRows);
        var bTile = SharedMemory.Allocate<T>(BlockInner * BlockCols);
        int tx = Group.IdxX, ty = Group.IdxY, t = ty * Threads + tx;
        int row0 = Grid.IdxY * BlockRows, col0 = Grid.IdxX * BlockCols;
        int cols = shape.Cols + shape.OnesColumn;

        // Which four elements this thread stages: (aRow + e * aRowStep, aK + e * aKStep) of the A tile, likewise for B.
        bool aInnerContiguous = shape.AInnerStride == 1;
        int aRow = aInnerContiguous ? t >> 1 : (t & 31) * 4, aK = aInnerContiguous ? (t & 1) * 4 : t >> 5;
        int aRowStep = aInnerContiguous ? 0 : 1, aKStep = aInnerContiguous ? 1 : 0;
        bool bColContiguous = shape.BColStride == 1;
        int bCol = bColContiguous ? (t & 31) * 4 : t >> 1, bK = bColContiguous ? t >> 5 : (t & 1) * 4;
        int bColStep = bColContiguous ? 1 : 0, bKStep = bColContiguous ? 0 : 1;

        T ra0 = LoadA(a, shape, row0 + aRow, aK), ra1 = LoadA(a, shape, row0 + aRow + aRowStep, aK + aKStep);
        T ra2 = LoadA(a, shape, row0 + aRow + 2 * aRowStep, aK + 2 * aKStep), ra3 = LoadA(a, shape, row0 + aRow + 3 * aRowStep, aK + 3 * aKStep);
        T rb0 = LoadB(b, shape, bK, col0 + bCol), rb1 = LoadB(b, shape, bK + bKStep, col0 + bCol + bColStep);
        T rb2 = LoadB(b, shape, bK + 2 * bKStep, col0 + bCol + 2 * bColStep), rb3 = LoadB(b, shape, bK + 3 * bKStep, col0 + bCol + 3 * bColStep);

        T c00 = T.Zero, c01 = T.Zero, c02 = T.Zero, c03 = T.Zero, c04 = T.Zero, c05 = T.Zero, c06 = T.Zero, c07 = T.Zero;
        T c10 = T.Zero, c11 = T.Zero, c12 = T.Zero, c13 = T.Zero, c14 = T.Zero, c15 = T.Zero, c16 = T.Zero, c17 = T.Zero;
        T c20 = T.Zero, c21 = T.Zero, c22 = T.Zero, c23 = T.Zero, c24 = T.Zero, c25 = T.Zero, c26 = T.Zero, c27 = T.Zero;
        T c30 = T.Zero, c31 = T.Zero, c32 = T.Zero, c33 = T.Zero, c34 = T.Zero, c35 = T.Zero, c36 = T.Zero, c37 = T.Zero;
        T c40 = T.Zero, c41 = T.Zero, c42 = T.Zero, c43 = T.Zero, c44 = T.Zero, c45 = T.Zero, c46 = T.Zero, c47 = T.Zero;
        T c50 = T.Zero, c51 = T.Zero, c52 = T.Zero, c53 = T.Zero, c54 = T.Zero, c55 = T.Zero, c56 = T.Zero, c57 = T.Zero;
        T c60 = T.Zero, c61 = T.Zero, c62 = T.Zero, c63 = T.Zero, c64 = T.Zero, c65 = T.Zero, c66 = T.Zero, c67 = T.Zero;
        T c70 = T.Zero, c71 = T.Zero, c72 = T.Zero, c73 = T.Zero, c74 = T.Zero, c75 = T.Zero, c76 = T.Zero, c77 = T.Zero;

        for (int start = 0; start < shape.Inner; start += BlockInner)
        {
            aTile[aK * BlockRows + aRow] = ra0;
            aTile[(aK + aKStep) * BlockRows + aRow + aRowStep] = ra1;
            aTile[(aK + 2 * aKStep) * BlockRows + aRow + 2 * aRowStep] = ra2;
            aTile[(aK + 3 * aKStep) * BlockRows + aRow + 3 * aRowStep] = ra3;
            bTile[bK * BlockCols + bCol] = rb0;
            bTile[(bK + bKStep) * BlockCols + bCol + bColStep] = rb1;
            bTile[(bK + 2 * bKStep) * BlockCols + bCol + 2 * bColStep] = rb2;
            bTile[(bK + 3 * bKStep) * BlockCols + bCol + 3 * bColStep] = rb3;
            Group.Barrier();

            // The next step's elements (zeros past the end) are in flight while this step computes.
            int next = start + BlockInner;
            ra0 = LoadA(a, shape, row0 + aRow, next + aK);
            ra1 = LoadA(a, shape, row0 + aRow + aRowStep, next + aK + aKStep);
            ra2 = LoadA(a, shape, row0 + aRow + 2 * aRowStep, next + aK + 2 * aKStep);
            ra3 = LoadA(a, shape, row0 + aRow + 3 * aRowStep, next + aK + 3 * aKStep);
            rb0 = LoadB(b, shape, next + bK, col0 + bCol);
            rb1 = LoadB(b, shape, next + bK + bKStep, col0 + bCol + bColStep);
            rb2 = LoadB(b, shape, next + bK + 2 * bKStep, col0 + bCol + 2 * bColStep);
            rb3 = LoadB(b, shape, next + bK + 3 * bKStep, col0 + bCol + 3 * bColStep);

            for (int k = 0; k < BlockInner; k++)
            {
                int at = k * BlockRows + ty, bt = k * BlockCols + tx;
                T a0 = aTile[at], a1 = aTile[at + 16], a2 = aTile[at + 32], a3 = aTile[at + 48];
                T a4 = aTile[at + 64], a5 = aTile[at + 80], a6 = aTile[at + 96], a7 = aTile[at + 112];
                T b0 = bTile[bt], b1 = bTile[bt + 16], b2 = bTile[bt + 32], b3 = bTile[bt + 48];
                T b4 = bTile[bt + 64], b5 = bTile[bt + 80], b6 = bTile[bt + 96], b7 = bTile[bt + 112];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3; c04 += a0 * b4; c05 += a0 * b5; c06 += a0 * b6; c07 += a0 * b7;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3; c14 += a1 * b4; c15 += a1 * b5; c16 += a1 * b6; c17 += a1 * b7;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3; c24 += a2 * b4; c25 += a2 * b5; c26 += a2 * b6; c27 += a2 * b7;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3; c34 += a3 * b4; c35 += a3 * b5; c36 += a3 * b6; c37 += a3 * b7;
                c40 += a4 * b0; c41 += a4 * b1; c42 += a4 * b2; c43 += a4 * b3; c44 += a4 * b4; c45 += a4 * b5; c46 += a4 * b6; c47 += a4 * b7;
                c50 += a5 * b0; c51 += a5 * b1; c52 += a5 * b2; c53 += a5 * b3; c54 += a5 * b4; c55 += a5 * b5; c56 += a5 * b6; c57 += a5 * b7;
                c60 += a6 * b0; c61 += a6 * b1; c62 += a6 * b2; c63 += a6 * b3; c64 += a6 * b4; c65 += a6 * b5; c66 += a6 * b6; c67 += a6 * b7;
                c70 += a7 * b0; c71 += a7 * b1; c72 += a7 * b2; c73 += a7 * b3; c74 += a7 * b4; c75 += a7 * b5; c76 += a7 * b6; c77 += a7 * b7;
            }
            Group.Barrier();
        }

        row0 += ty;
        col0 += tx;
        Store(c, bias, second, mask, rowSums, shape, row0 + 0, col0, c00, 0); Store(c, bias, second, mask, rowSums, shape, row0 + 0, col0, c01, 1); Store(c, bias, second, mask, rowSums, shape, row0 + 0, col0, c02, 2); Store(c, bias, second, mask, rowSums, shape, row0 + 0, col0, c03, 3); Store(c, bias, second, mask, rowSums, shape, row0 + 0, col0, c04, 4); Store(c, bias, second, mask, rowSums, shape, row0 + 0, col0, c05, 5); Store(c, bias, second, mask, rowSums, shape, row0 + 0, col0, c06, 6); Store(c, bias, second, mask, rowSums, shape, row0 + 0, col0, c07, 7);
        Store(c, bias, second, mask, rowSums, shape, row0 + 16, col0, c10, 0); Store(c, bias, second, mask, rowSums, shape, row0 + 16, col0, c11, 1); Store(c, bias, second, mask, rowSums, shape, row0 + 16, col0, c12, 2); Store(c, bias, second, mask, rowSums, shape, row0 + 16, col0, c13, 3); Store(c, bias, second, mask, rowSums, shape, row0 + 16, col0, c14, 4); Store(c, bias, second, mask, rowSums, shape, row0 + 16, col0, c15, 5); Store(c, bias, second, mask, rowSums, shape, row0 + 16, col0, c16, 6); Store(c, bias, second, mask, rowSums, shape, row0 + 16, col0, c17, 7);
        Store(c, bias, second, mask, rowSums, shape, row0 + 32, col0, c20, 0); Store(c, bias, second, mask, rowSums, shape, row0 + 32, col0, c21, 1); Store(c, bias, second, mask, rowSums, shape, row0 + 32, col0, c22, 2); Store(c, bias, second, mask, rowSums, shape, row0 + 32, col0, c23, 3); Store(c, bias, second, mask, rowSums, shape, row0 + 32, col0, c24, 4); Store(c, bias, second, mask, rowSums, shape, row0 + 32, col0, c25, 5); Store(c, bias, second, mask, rowSums, shape, row0 + 32, col0, c26, 6); Store(c, bias, second, mask, rowSums, shape, row0 + 32, col0, c27, 7);
        Store(c, bias, second, mask, rowSums, shape, row0 + 48, col0, c30, 0); Store(c, bias, second, mask, rowSums, shape, row0 + 48, col0, c31, 1); Store(c, bias, second, mask, rowSums, shape, row0 + 48, col0, c32, 2); Store(c, bias, second, mask, rowSums, shape, row0 + 48, col0, c33, 3); Store(c, bias, second, mask, rowSums, shape, row0 + 48, col0, c34, 4); Store(c, bias, second, mask, rowSums, shape, row0 + 48, col0, c35, 5); Store(c, bias, second, mask, rowSums, shape, row0 + 48, col0, c36, 6); Store(c, bias, second, mask, rowSums, shape, row0 + 48, col0, c37, 7);
        Store(c, bias, second, mask, rowSums, shape, row0 + 64, col0, c40, 0); Store(c, bias, second, mask, rowSums, shape, row0 + 64, col0, c41, 1); Store(c, bias, second, mask, rowSums, shape, row0 + 64, col0, c42, 2); Store(c, bias, second, mask, rowSums, shape, row0 + 64, col0, c43, 3); Store(c, bias, second, mask, rowSums, shape, row0 + 64, col0, c44, 4); Store(c, bias, second, mask, rowSums, shape, row0 + 64, col0, c45, 5); Store(c, bias, second, mask, rowSums, shape, row0 + 64, col0, c46, 6); Store(c, bias, second, mask, rowSums, shape, row0 + 64, col0, c47, 7);
        Store(c, bias, second, mask, rowSums, shape, row0 + 80, col0, c50, 0); Store(c, bias, second, mask, rowSums, shape, row0 + 80, col0, c51, 1); Store(c, bias, second, mask, rowSums, shape, row0 + 80, col0, c52, 2); Store(c, bias, second, mask, rowSums, shape, row0 + 80, col0, c53, 3); Store(c, bias, second, mask, rowSums, shape, row0 + 80, col0, c54, 4); Store(c, bias, second, mask, rowSums, shape, row0 + 80, col0, c55, 5); Store(c, bias, second, mask, rowSums, shape, row0 + 80, col0, c56, 6); Store(c, bias, second, mask, rowSums, shape, row0 + 80, col0, c57, 7);
        Store(c, bias, second, mask, rowSums, shape, row0 + 96, col0, c60, 0); Store(c, bias, second, mask, rowSums, shape, row0 + 96, col0, c61, 1); Store(c, bias, second, mask, rowSums, shape, row0 + 96, col0, c62, 2); Store(c, bias, second, mask, rowSums, shape, row0 + 96, col0, c63, 3); Store(c, bias, second, mask, rowSums, shape, row0 + 96, col0, c64, 4); Store(c, bias, second, mask, rowSums, shape, row0 + 96, col0, c65, 5); Store(c, bias, second, mask, rowSums, shape, row0 + 96, col0, c66, 6); Store(c, bias, second, mask, rowSums, shape, row0 + 96, col0, c67, 7);
        Store(c, bias, second, mask, rowSums, shape, row0 + 112, col0, c70, 0); Store(c, bias, second, mask, rowSums, shape, row0 + 112, col0, c71, 1); Store(c, bias, second, mask, rowSums, shape, row0 + 112, col0, c72, 2); Store(c, bias, second, mask, rowSums, shape, row0 + 112, col0, c73, 3); Store(c, bias, second, mask, rowSums, shape, row0 + 112, col0, c74, 4); Store(c, bias, second, mask, rowSums, shape, row0 + 112, col0, c75, 5); Store(c, bias, second, mask, rowSums, shape, row0 + 112, col0, c76, 6); Store(c, bias, second, mask, rowSums, shape, row0 + 112, col0, c77, 7);
    }

    /// <summary>A[row, k], zero outside the matrix (the partial tiles at the edges).</summary>
    private static T LoadA<T>(ArrayView<T> a, ProductShape shape, int row, int k)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        row < shape.Rows && k < shape.Inner ? a[row * shape.ARowStride + k * shape.AInnerStride] : T.Zero;

    /// <summary>B[k, col], one in the ones column (col = Cols), zero outside.</summary>
    private static T LoadB<T>(ArrayView<T> b, ProductShape shape, int k, int col)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (k >= shape.Inner) return T.Zero;
        if (col < shape.Cols) return b[k * shape.BInnerStride + col * shape.BColStride];
        return col == shape.Cols && shape.OnesColumn != 0 ? T.One : T.Zero;
    }

    /// <summary>The epilogue of element (row, col0 + 16 j) of C, as <see cref="TiledProduct"/> writes it.</summary>
    private static void Store<T>(ArrayView<T> c, ArrayView<T> bias, ArrayView<T> second, ArrayView<T> mask, ArrayView<T> rowSums,
        ProductShape shape, int row, int col0, T sum, int j)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int col = col0 + 16 * j;
        if (row >= shape.Rows || col >= shape.Cols + shape.OnesColumn) return;
        if (col == shape.Cols)
        {
            rowSums[row] = shape.Accumulate != 0 ? rowSums[row] + sum : sum;
            return;
        }
        int at = row * shape.Cols + col;
        if (shape.AddBias != 0) sum += bias[col];
        if (shape.Accumulate != 0) sum = c[at] + sum;
        c[at] = sum;
        if (shape.Second == SecondOutput.Relu) second[at] = sum > T.Zero ? sum : T.Zero;
        else if (shape.Second == SecondOutput.ReluMask) second[at] = mask[at] > T.Zero ? sum : T.Zero;
    }
}
