using System.Numerics;
using ILGPU;

namespace Parity.Backends.Native.Kernels;

/// <summary>Buffers of one batchnorm call in train mode (views of the session's device buffers).</summary>
public struct BatchNormTrainViews<T>
    where T : unmanaged
{
    /// <summary>x [n, f].</summary>
    public ArrayView<T> Input;

    /// <summary>gamma [f] (ignored when not affine).</summary>
    public ArrayView<T> Gamma;

    /// <summary>beta [f] (ignored when not affine).</summary>
    public ArrayView<T> Beta;

    /// <summary>y [n, f].</summary>
    public ArrayView<T> Output;

    /// <summary>x-hat [n, f], kept for the backward pass.</summary>
    public ArrayView<T> Normalized;

    /// <summary>max(y, 0) [n, f] when a relu call follows (fused).</summary>
    public ArrayView<T> ReluOutput;

    /// <summary>Batch mean [f] of this call.</summary>
    public ArrayView<T> BatchMean;

    /// <summary>Biased batch variance [f] of this call.</summary>
    public ArrayView<T> BatchVariance;

    /// <summary>The instance's running mean [f], updated in place.</summary>
    public ArrayView<T> RunningMean;

    /// <summary>The instance's running variance [f], updated in place.</summary>
    public ArrayView<T> RunningVariance;
}

/// <summary>Sizes and switches of a normalization launch.</summary>
public struct NormShape
{
    /// <summary>Rows (batch size).</summary>
    public int Rows;

    /// <summary>Features.</summary>
    public int Features;

    /// <summary>1 when gamma and beta exist.</summary>
    public int Affine;

    /// <summary>1 when a relu output is fused (forward) .</summary>
    public int Relu;

    /// <summary>1 to write the input gradient (0 for the first call of the model).</summary>
    public int WriteInputGradient;

    /// <summary>1 to add to the parameter gradients instead of overwriting them (a shared instance's second call).</summary>
    public int Accumulate;
}

/// <summary>Host-computed constants of a normalization launch (kernels cannot convert integers to T).</summary>
public struct NormScalars<T>
    where T : unmanaged
{
    /// <summary>eps, inside the square root.</summary>
    public T Eps;

    /// <summary>The count normalized over (rows for batchnorm, features for layernorm).</summary>
    public T Count;

    /// <summary>1 / Count.</summary>
    public T InverseCount;

    /// <summary>Canonical momentum m: run = (1 - m) run + m batch [P1].</summary>
    public T Momentum;

    /// <summary>1 - m.</summary>
    public T OneMinusMomentum;

    /// <summary>N/(N-1) for the unbiased running variance, 1 for the biased one.</summary>
    public T VarianceCorrection;
}

/// <summary>Batchnorm and layernorm, forward and backward.</summary>
public static class Normalization
{
    /// <summary>
    /// Batchnorm forward in train mode, one group column per feature (lanes stride the rows): batch mean and biased variance (two passes,
    /// deterministic tree sums), normalization with eps inside the square root, scale and shift, the optional
    /// fused relu, and the running-statistics update of this call (canonical convention, [P1]; a shared instance
    /// gets one launch, so one update, per call, in call order as in Chainer [C]).
    /// </summary>
    public static void BatchNormForwardTrain<T>(BatchNormTrainViews<T> v, NormShape shape, NormScalars<T> c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var scratch = SharedMemory.Allocate<T>(GroupReduction.MaxThreads);
        int features = shape.Features, f = Grid.IdxX * Group.DimX + Group.IdxX, lane = Group.IdxY, lanes = Group.DimY;
        // Threads past the last feature still take part in every barrier; they read and write nothing.
        int rows = f < features ? shape.Rows : 0;

        T partial = T.Zero;
        for (int i = lane; i < rows; i += lanes) partial += v.Input[i * features + f];
        T mean = GroupReduction.SumLanes(scratch, partial) / c.Count;

        partial = T.Zero;
        for (int i = lane; i < rows; i += lanes)
        {
            T d = v.Input[i * features + f] - mean;
            partial += d * d;
        }
        T variance = GroupReduction.SumLanes(scratch, partial) / c.Count;
        if (rows == 0) return;
        T inverseStd = T.One / T.Sqrt(variance + c.Eps);
        T gamma = shape.Affine != 0 ? v.Gamma[f] : T.One;
        T beta = shape.Affine != 0 ? v.Beta[f] : T.Zero;

        for (int i = lane; i < rows; i += lanes)
        {
            int at = i * features + f;
            T xhat = (v.Input[at] - mean) * inverseStd;
            T y = gamma * xhat + beta;
            v.Normalized[at] = xhat;
            v.Output[at] = y;
            if (shape.Relu != 0) v.ReluOutput[at] = y > T.Zero ? y : T.Zero;
        }

        if (lane == 0)
        {
            v.BatchMean[f] = mean;
            v.BatchVariance[f] = variance;
            v.RunningMean[f] = c.OneMinusMomentum * v.RunningMean[f] + c.Momentum * mean;
            v.RunningVariance[f] = c.OneMinusMomentum * v.RunningVariance[f] + c.Momentum * (variance * c.VarianceCorrection);
        }
    }

    /// <summary>
    /// Batchnorm backward, one group column per feature, the simplified cs231n formula [CS]:
    /// dx = gamma / sqrt(var + eps) / N * (N dy - sum(dy) - xhat * sum(dy xhat)); dgamma = sum(dy xhat), dbeta = sum(dy).
    /// </summary>
    public static void BatchNormBackward<T>(ArrayView<T> outputGradient, ArrayView<T> normalized, ArrayView<T> gamma,
        ArrayView<T> batchVariance, ArrayView<T> inputGradient, ArrayView<T> gammaGradient, ArrayView<T> betaGradient,
        NormShape shape, NormScalars<T> c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var first = SharedMemory.Allocate<T>(GroupReduction.MaxThreads);
        var second = SharedMemory.Allocate<T>(GroupReduction.MaxThreads);
        int features = shape.Features, f = Grid.IdxX * Group.DimX + Group.IdxX, lane = Group.IdxY, lanes = Group.DimY;
        int rows = f < features ? shape.Rows : 0;

        var (sumDy, sumDyXhat) = GradientColumnSums(outputGradient, normalized, first, second, rows, features, f, lane, lanes);
        if (rows == 0) return;

        T g = shape.Affine != 0 ? gamma[f] : T.One;
        if (shape.WriteInputGradient != 0)
        {
            // Rounded as the reference forms it: 1 / (sqrt(var + eps) N), times gamma.
            T scale = T.One / (T.Sqrt(batchVariance[f] + c.Eps) * c.Count) * g;
            for (int i = lane; i < rows; i += lanes)
            {
                int at = i * features + f;
                inputGradient[at] = scale * (c.Count * outputGradient[at] - sumDy - normalized[at] * sumDyXhat);
            }
        }
        if (lane == 0 && shape.Affine != 0)
        {
            gammaGradient[f] = shape.Accumulate != 0 ? gammaGradient[f] + sumDyXhat : sumDyXhat;
            betaGradient[f] = shape.Accumulate != 0 ? betaGradient[f] + sumDy : sumDy;
        }
    }

    /// <summary>Batchnorm in eval mode, one thread per element: running statistics instead of batch statistics; no state changes.</summary>
    public static void BatchNormForwardEval<T>(Index1D index, ArrayView<T> input, ArrayView<T> gamma, ArrayView<T> beta,
        ArrayView<T> runningMean, ArrayView<T> runningVariance, ArrayView<T> output, ArrayView<T> reluOutput, NormShape shape, NormScalars<T> c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int f = index % shape.Features;
        T xhat = (input[index] - runningMean[f]) * (T.One / T.Sqrt(runningVariance[f] + c.Eps));
        T y = shape.Affine != 0 ? gamma[f] * xhat + beta[f] : xhat;
        output[index] = y;
        if (shape.Relu != 0) reluOutput[index] = y > T.Zero ? y : T.Zero;
    }

    /// <summary>
    /// Layernorm forward, one group column per row (lanes stride the features): mean and biased variance over the features, eps inside the square
    /// root [CS], scale and shift per feature, the optional fused relu; keeps x-hat and 1/std for the backward pass.
    /// </summary>
    public static void LayerNormForward<T>(ArrayView<T> input, ArrayView<T> gamma, ArrayView<T> beta, ArrayView<T> output,
        ArrayView<T> normalized, ArrayView<T> inverseStd, ArrayView<T> reluOutput, NormShape shape, NormScalars<T> c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var scratch = SharedMemory.Allocate<T>(GroupReduction.MaxThreads);
        int row = Grid.IdxX * Group.DimX + Group.IdxX, lane = Group.IdxY, lanes = Group.DimY;
        // Threads past the last row still take part in every barrier; they read and write nothing.
        int features = row < shape.Rows ? shape.Features : 0, start = row * shape.Features;

        T partial = T.Zero;
        for (int j = lane; j < features; j += lanes) partial += input[start + j];
        T mean = GroupReduction.SumLanes(scratch, partial) / c.Count;
        partial = T.Zero;
        for (int j = lane; j < features; j += lanes)
        {
            T d = input[start + j] - mean;
            partial += d * d;
        }
        T variance = GroupReduction.SumLanes(scratch, partial) / c.Count;
        if (features == 0) return;
        T rstd = T.One / T.Sqrt(variance + c.Eps);
        for (int j = lane; j < features; j += lanes)
        {
            T xhat = (input[start + j] - mean) * rstd;
            T y = shape.Affine != 0 ? gamma[j] * xhat + beta[j] : xhat;
            normalized[start + j] = xhat;
            output[start + j] = y;
            if (shape.Relu != 0) reluOutput[start + j] = y > T.Zero ? y : T.Zero;
        }
        if (lane == 0) inverseStd[row] = rstd;
    }

    /// <summary>
    /// Layernorm input gradient, one group column per row: with g = dy * gamma,
    /// dx = rstd / F * (F g - sum(g) - xhat * sum(g xhat)) (the batchnorm formula with rows and features swapped).
    /// </summary>
    public static void LayerNormBackward<T>(ArrayView<T> outputGradient, ArrayView<T> normalized, ArrayView<T> gamma,
        ArrayView<T> inverseStd, ArrayView<T> inputGradient, NormShape shape, NormScalars<T> c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var first = SharedMemory.Allocate<T>(GroupReduction.MaxThreads);
        var second = SharedMemory.Allocate<T>(GroupReduction.MaxThreads);
        int row = Grid.IdxX * Group.DimX + Group.IdxX, lane = Group.IdxY, lanes = Group.DimY;
        int features = row < shape.Rows ? shape.Features : 0, start = row * shape.Features;

        T sumG = T.Zero, sumGXhat = T.Zero;
        for (int j = lane; j < features; j += lanes)
        {
            T g = shape.Affine != 0 ? outputGradient[start + j] * gamma[j] : outputGradient[start + j];
            sumG += g;
            sumGXhat += g * normalized[start + j];
        }
        (sumG, sumGXhat) = GroupReduction.SumLanes2(first, second, sumG, sumGXhat);
        if (features == 0) return;
        T scale = inverseStd[row] / c.Count;
        for (int j = lane; j < features; j += lanes)
        {
            T g = shape.Affine != 0 ? outputGradient[start + j] * gamma[j] : outputGradient[start + j];
            inputGradient[start + j] = scale * (c.Count * g - sumG - normalized[start + j] * sumGXhat);
        }
    }

    /// <summary>
    /// Per-feature sums over the rows, one group column per feature: dgamma = sum(dy xhat), dbeta = sum(dy) of a layernorm
    /// (overwritten, or added for a shared instance's further calls).
    /// </summary>
    public static void ScaleShiftGradients<T>(ArrayView<T> outputGradient, ArrayView<T> normalized, ArrayView<T> gammaGradient,
        ArrayView<T> betaGradient, NormShape shape)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var first = SharedMemory.Allocate<T>(GroupReduction.MaxThreads);
        var second = SharedMemory.Allocate<T>(GroupReduction.MaxThreads);
        int features = shape.Features, f = Grid.IdxX * Group.DimX + Group.IdxX, lane = Group.IdxY, lanes = Group.DimY;
        int rows = f < features ? shape.Rows : 0;
        var (sumDy, sumDyXhat) = GradientColumnSums(outputGradient, normalized, first, second, rows, features, f, lane, lanes);
        if (rows > 0 && lane == 0)
        {
            gammaGradient[f] = shape.Accumulate != 0 ? gammaGradient[f] + sumDyXhat : sumDyXhat;
            betaGradient[f] = shape.Accumulate != 0 ? betaGradient[f] + sumDy : sumDy;
        }
    }

    // Column f's sum(dy) and sum(dy * xhat) over the rows, each lane summing rows lane, lane + lanes, ... in order and
    // the lanes combined by the fixed tree of GroupReduction: the batchnorm backward and the gamma/beta gradients of
    // both normalizations share it. Every thread of the group must call it (the reduction has barriers).
    private static (T SumDy, T SumDyXhat) GradientColumnSums<T>(ArrayView<T> outputGradient, ArrayView<T> normalized,
        ArrayView<T> first, ArrayView<T> second, int rows, int features, int f, int lane, int lanes)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T sumDy = T.Zero, sumDyXhat = T.Zero;
        for (int i = lane; i < rows; i += lanes)
        {
            int at = i * features + f;
            sumDy += outputGradient[at];
            sumDyXhat += outputGradient[at] * normalized[at];
        }
        return GroupReduction.SumLanes2(first, second, sumDy, sumDyXhat);
    }
}
