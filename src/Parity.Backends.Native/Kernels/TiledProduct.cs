using System.Numerics;
using ILGPU;

namespace Parity.Backends.Native.Kernels;

/// <summary>What a tiled product writes besides C itself (fused epilogues).</summary>
public static class SecondOutput
{
    /// <summary>Nothing else.</summary>
    public const int None = 0;

    /// <summary>max(C, 0) into the second output: a linear call followed by a relu call (forward).</summary>
    public const int Relu = 1;

    /// <summary>C where the mask is positive, else 0, into the second output: relu backward fused into dX.</summary>
    public const int ReluMask = 2;
}

/// <summary>
/// The shape of one product C[Rows, Cols] = A[Rows, Inner] B[Inner, Cols], where A and B are read through strides
/// (so x W^T, dY W and dY^T X are all this one kernel without transposed copies), and its epilogue.
/// </summary>
public struct ProductShape
{
    /// <summary>Rows of C.</summary>
    public int Rows;

    /// <summary>Columns of C.</summary>
    public int Cols;

    /// <summary>The summed dimension.</summary>
    public int Inner;

    /// <summary>Stride of A between rows of C.</summary>
    public int ARowStride;

    /// <summary>Stride of A along the summed dimension.</summary>
    public int AInnerStride;

    /// <summary>Stride of B along the summed dimension.</summary>
    public int BInnerStride;

    /// <summary>Stride of B between columns of C.</summary>
    public int BColStride;

    /// <summary>1: add the bias vector (indexed by column) before the activation.</summary>
    public int AddBias;

    /// <summary>1: add to what C (and the ones-column output) already hold: gradients of a shared instance.</summary>
    public int Accumulate;

    /// <summary>One of <see cref="SecondOutput"/>.</summary>
    public int Second;

    /// <summary>
    /// 1: B gets an extra column of ones, so C gets an extra column holding the row sums of A. With A = dY^T
    /// that column is the bias gradient, sum over the batch of dY, computed in the dW launch.
    /// </summary>
    public int OnesColumn;
}

/// <summary>The 16 x 16 tiled matrix product (forward and both backward products) for the shapes too small for <see cref="BlockedProduct"/>.</summary>
public static class TiledProduct
{
    /// <summary>Tile edge: a group is Tile x Tile threads, one per element of a C tile (256 threads, 8 warps on CUDA).</summary>
    public const int Tile = 16;

    /// <summary>
    /// One Tile x Tile block of C per group. Each step of the loop stages one Tile x Tile block of A and of B in group
    /// shared memory (one element per thread), waits at a barrier, and accumulates Tile products per thread; the sum
    /// over the inner dimension runs in index order, so the result does not depend on scheduling.
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
        var aTile = SharedMemory.Allocate<T>(Tile * Tile);
        var bTile = SharedMemory.Allocate<T>(Tile * Tile);
        int tx = Group.IdxX, ty = Group.IdxY;
        int row = Grid.IdxY * Tile + ty;
        int col = Grid.IdxX * Tile + tx;
        int cols = shape.Cols + shape.OnesColumn;

        T sum = T.Zero;
        for (int start = 0; start < shape.Inner; start += Tile)
        {
            int ak = start + tx;
            aTile[ty * Tile + tx] = row < shape.Rows && ak < shape.Inner ? a[row * shape.ARowStride + ak * shape.AInnerStride] : T.Zero;
            int bk = start + ty;
            T bValue = T.Zero;
            if (bk < shape.Inner)
            {
                if (col < shape.Cols) bValue = b[bk * shape.BInnerStride + col * shape.BColStride];
                else if (col < cols) bValue = T.One;
            }
            bTile[ty * Tile + tx] = bValue;
            Group.Barrier();
            for (int k = 0; k < Tile; k++) sum += aTile[ty * Tile + k] * bTile[k * Tile + tx];
            Group.Barrier();
        }

        if (row >= shape.Rows || col >= cols) return;
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
