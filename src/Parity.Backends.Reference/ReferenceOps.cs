using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using Parity.Models;
using System.Runtime.Intrinsics;
using Parity.Specs;

namespace Parity.Backends.Reference;

/// <summary>
/// The forward and backward math of every layer, the loss and the optimizers, written from the cs231n
/// batch-normalization assignment (seed 003, docs/conventions.md [CS]) and the canonical conventions
/// (docs/conventions.md sections 1 and 3). Generic over the element type so the float32 variant
/// really computes in float32. Row-major spans; gradients are OVERWRITTEN (callers accumulate the
/// gradients of a shared instance over its calls).
/// </summary>
/// <remarks>
/// Determinism: every output element is computed by one thread in one fixed order, so results are
/// bit-identical on every run and any thread count (the matrix products run disjoint output tiles in
/// parallel and never split a reduction; each element equals the naive sequential loop in the same
/// precision, see <c>MatrixProduct</c>). Other backends' kernel tests call these ops to check themselves op by op.
/// </remarks>
public static class ReferenceOps
{
    private static readonly ParallelOptions DefaultParallelism = new();

    /// <summary>y = x W^T + b with x [n, inW], W [outW, inW] (PyTorch layout [P3]), b [outW] or empty for no bias.</summary>
    public static void LinearForward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> b, Span<T> y, int n, int inW, int outW)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(x, (long)n * inW, nameof(x));
        CheckLength(w, (long)outW * inW, nameof(w));
        if (!b.IsEmpty) CheckLength(b, outW, nameof(b));
        CheckLength(y, (long)n * outW, nameof(y));
        LinearForward(x, w, b, y, n, inW, outW, DefaultParallelism);
    }

    /// <summary>
    /// Gradients of y = x W^T + b: dx = dy W (skipped when <paramref name="dx"/> is empty), dW = dy^T x,
    /// db = column sums of dy (skipped when <paramref name="db"/> is empty). All three are overwritten.
    /// </summary>
    public static void LinearBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> dy, Span<T> dx, Span<T> dw, Span<T> db, int n, int inW, int outW)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(x, (long)n * inW, nameof(x));
        CheckLength(w, (long)outW * inW, nameof(w));
        CheckLength(dy, (long)n * outW, nameof(dy));
        if (!dx.IsEmpty) CheckLength(dx, (long)n * inW, nameof(dx));
        CheckLength(dw, (long)outW * inW, nameof(dw));
        if (!db.IsEmpty) CheckLength(db, outW, nameof(db));
        LinearBackward(x, w, dy, dx, dw, db, n, inW, outW, DefaultParallelism);
    }

    /// <summary>
    /// Train-mode batch normalization over the batch axis of x [n, f] (cs231n <c>batchnorm_forward</c>):
    /// mean, biased (1/N) variance, xhat = (x - mean) / sqrt(var + eps), y = gamma xhat + beta.
    /// <paramref name="gamma"/> empty means not affine (gamma 1, beta 0).
    /// </summary>
    public static void BatchNormForwardTrain<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta, T eps,
        Span<T> y, Span<T> mean, Span<T> biasedVar, Span<T> xhat, int n, int f)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(x, (long)n * f, nameof(x));
        CheckAffine(gamma, beta, f);
        CheckLength(y, (long)n * f, nameof(y));
        CheckLength(mean, f, nameof(mean));
        CheckLength(biasedVar, f, nameof(biasedVar));
        CheckLength(xhat, (long)n * f, nameof(xhat));
        T count = T.CreateChecked(n);

        // Two passes (mean, then the mean of squared deviations) as cs231n writes it; sums run over
        // rows in order so every feature's statistic has one fixed summation order.
        mean.Clear();
        for (int i = 0; i < n; i++) TensorPrimitives.Add(mean, x.Slice(i * f, f), mean);
        TensorPrimitives.Divide(mean, count, mean);
        biasedVar.Clear();
        for (int i = 0; i < n; i++)
        {
            var centered = xhat.Slice(i * f, f);
            TensorPrimitives.Subtract(x.Slice(i * f, f), mean, centered);
            TensorPrimitives.MultiplyAdd(centered, centered, biasedVar, biasedVar);
        }
        TensorPrimitives.Divide(biasedVar, count, biasedVar);

        // eps inside the square root in every framework (docs/conventions.md section 1).
        T[] rstd = ArrayPool<T>.Shared.Rent(f);
        try
        {
            var inv = rstd.AsSpan(0, f);
            TensorPrimitives.Add(biasedVar, eps, inv);
            TensorPrimitives.Sqrt(inv, inv);
            TensorPrimitives.Divide(T.One, inv, inv);
            for (int i = 0; i < n; i++)
            {
                var row = xhat.Slice(i * f, f);
                TensorPrimitives.Multiply(row, inv, row);
                Affine(row, gamma, beta, y.Slice(i * f, f));
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(rstd);
        }
    }

    /// <summary>
    /// Backward of train-mode batch normalization in the simplified closed form of cs231n
    /// <c>batchnorm_backward_alt</c>: dxhat = gamma dy; dx = rstd/N (N dxhat - sum(dxhat) - xhat sum(dxhat xhat)),
    /// dgamma = sum(dy xhat), dbeta = sum(dy) over the batch. With <paramref name="gamma"/> empty (not affine)
    /// gamma is 1 and <paramref name="dgamma"/>/<paramref name="dbeta"/> may be empty.
    /// </summary>
    public static void BatchNormBackward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> xhat, ReadOnlySpan<T> gamma, ReadOnlySpan<T> biasedVar, T eps,
        Span<T> dx, Span<T> dgamma, Span<T> dbeta, int n, int f)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(dy, (long)n * f, nameof(dy));
        CheckLength(xhat, (long)n * f, nameof(xhat));
        if (!gamma.IsEmpty) CheckLength(gamma, f, nameof(gamma));
        CheckLength(biasedVar, f, nameof(biasedVar));
        CheckLength(dx, (long)n * f, nameof(dx));
        if (!dgamma.IsEmpty) CheckLength(dgamma, f, nameof(dgamma));
        if (!dbeta.IsEmpty) CheckLength(dbeta, f, nameof(dbeta));

        T[] rented = ArrayPool<T>.Shared.Rent(3 * f);
        try
        {
            var sumDy = rented.AsSpan(0, f);
            var sumDyXhat = rented.AsSpan(f, f);
            var scale = rented.AsSpan(2 * f, f);
            sumDy.Clear();
            sumDyXhat.Clear();
            for (int i = 0; i < n; i++)
            {
                TensorPrimitives.Add(sumDy, dy.Slice(i * f, f), sumDy);
                TensorPrimitives.MultiplyAdd(dy.Slice(i * f, f), xhat.Slice(i * f, f), sumDyXhat, sumDyXhat);
            }
            if (!dgamma.IsEmpty) sumDyXhat.CopyTo(dgamma);
            if (!dbeta.IsEmpty) sumDy.CopyTo(dbeta);

            // dx = gamma rstd / N * (N dy - sum(dy) - xhat * sum(dy xhat)); the sums of dxhat are gamma times
            // the sums of dy, so gamma factors out of the bracket.
            T count = T.CreateChecked(n);
            TensorPrimitives.Add(biasedVar, eps, scale);
            TensorPrimitives.Sqrt(scale, scale);
            TensorPrimitives.Multiply(scale, count, scale);
            TensorPrimitives.Divide(T.One, scale, scale);
            if (!gamma.IsEmpty) TensorPrimitives.Multiply(scale, gamma, scale);
            for (int i = 0; i < n; i++)
            {
                var row = dx.Slice(i * f, f);
                TensorPrimitives.Multiply(dy.Slice(i * f, f), count, row);
                TensorPrimitives.Subtract(row, sumDy, row);
                for (int j = 0; j < f; j++) row[j] -= xhat[i * f + j] * sumDyXhat[j];
                TensorPrimitives.Multiply(row, scale, row);
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(rented);
        }
    }

    /// <summary>Eval-mode batch normalization: y = gamma (x - runningMean) / sqrt(runningVar + eps) + beta.</summary>
    public static void BatchNormForwardEval<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta, ReadOnlySpan<T> runningMean,
        ReadOnlySpan<T> runningVar, T eps, Span<T> y, int n, int f)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(x, (long)n * f, nameof(x));
        CheckAffine(gamma, beta, f);
        CheckLength(runningMean, f, nameof(runningMean));
        CheckLength(runningVar, f, nameof(runningVar));
        CheckLength(y, (long)n * f, nameof(y));
        T[] rented = ArrayPool<T>.Shared.Rent(f);
        try
        {
            var inv = rented.AsSpan(0, f);
            TensorPrimitives.Add(runningVar, eps, inv);
            TensorPrimitives.Sqrt(inv, inv);
            TensorPrimitives.Divide(T.One, inv, inv);
            for (int i = 0; i < n; i++)
            {
                var row = y.Slice(i * f, f);
                TensorPrimitives.Subtract(x.Slice(i * f, f), runningMean, row);
                TensorPrimitives.Multiply(row, inv, row);
                Affine(row, gamma, beta, row);
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// The canonical running-statistics update (PyTorch meaning [P1]): run = (1 - m) run + m batch. The
    /// running variance receives the biased batch variance, or var * n/(n-1) when <paramref name="unbiased"/>
    /// ([P1,P2], Chainer [C]). A shared instance calls this once per call, in call order.
    /// </summary>
    public static void UpdateRunningStatistics<T>(Span<T> runningMean, Span<T> runningVar, ReadOnlySpan<T> mean, ReadOnlySpan<T> biasedVar,
        T momentum, bool unbiased, int n)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int f = runningMean.Length;
        CheckLength(runningVar, f, nameof(runningVar));
        CheckLength(mean, f, nameof(mean));
        CheckLength(biasedVar, f, nameof(biasedVar));
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "the batch needs at least one sample");
        T keep = T.One - momentum;
        // Chainer divides by max(n - 1, 1) [C]; a batch of one keeps its (zero) biased variance.
        T correction = unbiased && n > 1 ? T.CreateChecked(n) / T.CreateChecked(n - 1) : T.One;
        for (int j = 0; j < f; j++)
        {
            runningMean[j] = keep * runningMean[j] + momentum * mean[j];
            runningVar[j] = keep * runningVar[j] + momentum * (biasedVar[j] * correction);
        }
    }

    /// <summary>
    /// Layer normalization over the feature axis of each sample (cs231n <c>layernorm_forward</c>, seed 003):
    /// per row mean and biased variance, xhat = (x - mean) rstd with rstd = 1/sqrt(var + eps), y = gamma xhat + beta.
    /// <paramref name="rstd"/> holds one value per sample.
    /// </summary>
    public static void LayerNormForward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta, T eps, Span<T> y, Span<T> xhat, Span<T> rstd, int n, int f)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(x, (long)n * f, nameof(x));
        CheckAffine(gamma, beta, f);
        CheckLength(y, (long)n * f, nameof(y));
        CheckLength(xhat, (long)n * f, nameof(xhat));
        CheckLength(rstd, n, nameof(rstd));
        T count = T.CreateChecked(f);
        for (int i = 0; i < n; i++)
        {
            var src = x.Slice(i * f, f);
            var row = xhat.Slice(i * f, f);
            T mean = T.Zero;
            for (int j = 0; j < f; j++) mean += src[j];
            mean /= count;
            T variance = T.Zero;
            for (int j = 0; j < f; j++)
            {
                row[j] = src[j] - mean;
                variance += row[j] * row[j];
            }
            variance /= count;
            T inv = T.One / T.Sqrt(variance + eps);
            rstd[i] = inv;
            TensorPrimitives.Multiply(row, inv, row);
            Affine(row, gamma, beta, y.Slice(i * f, f));
        }
    }

    /// <summary>
    /// Backward of layer normalization: the batchnorm closed form applied per sample over features
    /// (cs231n <c>layernorm_backward</c>): dx = rstd/F (F dxhat - sum(dxhat) - xhat sum(dxhat xhat)) with
    /// dxhat = gamma dy; dgamma = sum over the batch of dy xhat, dbeta = sum of dy.
    /// </summary>
    public static void LayerNormBackward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> xhat, ReadOnlySpan<T> gamma, ReadOnlySpan<T> rstd,
        Span<T> dx, Span<T> dgamma, Span<T> dbeta, int n, int f)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(dy, (long)n * f, nameof(dy));
        CheckLength(xhat, (long)n * f, nameof(xhat));
        if (!gamma.IsEmpty) CheckLength(gamma, f, nameof(gamma));
        CheckLength(rstd, n, nameof(rstd));
        CheckLength(dx, (long)n * f, nameof(dx));
        if (!dgamma.IsEmpty) CheckLength(dgamma, f, nameof(dgamma));
        if (!dbeta.IsEmpty) CheckLength(dbeta, f, nameof(dbeta));
        if (!dgamma.IsEmpty) dgamma.Clear();
        if (!dbeta.IsEmpty) dbeta.Clear();
        T count = T.CreateChecked(f);
        for (int i = 0; i < n; i++)
        {
            var dyRow = dy.Slice(i * f, f);
            var xhatRow = xhat.Slice(i * f, f);
            var row = dx.Slice(i * f, f);
            if (!dgamma.IsEmpty) TensorPrimitives.MultiplyAdd(dyRow, xhatRow, dgamma, dgamma);
            if (!dbeta.IsEmpty) TensorPrimitives.Add(dbeta, dyRow, dbeta);
            if (gamma.IsEmpty) dyRow.CopyTo(row);
            else TensorPrimitives.Multiply(dyRow, gamma, row); // row holds dxhat
            T sum = T.Zero, sumXhat = T.Zero;
            for (int j = 0; j < f; j++)
            {
                sum += row[j];
                sumXhat += row[j] * xhatRow[j];
            }
            T scale = rstd[i] / count;
            for (int j = 0; j < f; j++) row[j] = scale * (count * row[j] - sum - xhatRow[j] * sumXhat);
        }
    }

    /// <summary>y = max(x, 0).</summary>
    public static void ReluForward<T>(ReadOnlySpan<T> x, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(y, x.Length, nameof(y));
        // Vectorized as a select on the sign test, so NaN and -0 give +0 exactly as the scalar line does (and no
        // branch mispredicts on the random signs of a pre-activation).
        int i = 0;
        for (; i + Vector256<T>.Count <= x.Length; i += Vector256<T>.Count)
        {
            var v = Vector256.Create(x.Slice(i, Vector256<T>.Count));
            Vector256.ConditionalSelect(Vector256.GreaterThan(v, Vector256<T>.Zero), v, Vector256<T>.Zero).CopyTo(y.Slice(i));
        }
        for (; i < x.Length; i++) y[i] = x[i] > T.Zero ? x[i] : T.Zero;
    }

    /// <summary>dx = dy where the output is positive, else 0 (the subgradient 0 at the kink, as every framework uses).</summary>
    public static void ReluBackward<T>(ReadOnlySpan<T> y, ReadOnlySpan<T> dy, Span<T> dx)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(dy, y.Length, nameof(dy));
        CheckLength(dx, y.Length, nameof(dx));
        int i = 0;
        for (; i + Vector256<T>.Count <= y.Length; i += Vector256<T>.Count)
        {
            var positive = Vector256.GreaterThan(Vector256.Create(y.Slice(i, Vector256<T>.Count)), Vector256<T>.Zero);
            Vector256.ConditionalSelect(positive, Vector256.Create(dy.Slice(i, Vector256<T>.Count)), Vector256<T>.Zero).CopyTo(dx.Slice(i));
        }
        for (; i < y.Length; i++) dx[i] = y[i] > T.Zero ? dy[i] : T.Zero;
    }

    /// <summary>
    /// scaled = mask * scale with mask 0 or 1 per element (a dropout mask; scale = 1/(1 - p) in the working precision, as
    /// PyTorch and TF.js multiply by it). Throws <see cref="BackendException"/> naming <paramref name="callId"/> when the
    /// mask has the wrong length or an element other than 0 and 1.
    /// </summary>
    public static void DropoutMask<T>(ReadOnlySpan<double> mask, T scale, Span<T> scaled, string callId)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (mask.Length != scaled.Length)
            throw new BackendException($"the dropout mask of call '{callId}' has {mask.Length} elements; the call's output has {scaled.Length}");
        for (int i = 0; i < mask.Length; i++)
            scaled[i] = mask[i] switch
            {
                1 => scale,
                0 => T.Zero,
                _ => throw new BackendException($"the dropout mask of call '{callId}' holds {mask[i]} at element {i}; a mask holds only 0 and 1"),
            };
    }

    /// <summary>z = x * y elementwise.</summary>
    public static void Multiply<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> y, Span<T> z) where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(y, x.Length, nameof(y));
        CheckLength(z, x.Length, nameof(z));
        for (int i = 0; i < x.Length; i++) z[i] = x[i] * y[i];
    }

    /// <summary>y = f(x) for an activation (<see cref="Activations.Forward{T}"/>).</summary>
    public static void ActivationForward<T>(ActivationConstants<T> c, ReadOnlySpan<T> x, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(y, x.Length, nameof(y));
        for (int i = 0; i < x.Length; i++) y[i] = Activations.Forward(c, x[i]);
    }

    /// <summary>
    /// dx = dy f'(x). <paramref name="followSigns"/>, when given, decides the branch of a kinked function by its
    /// elements' signs instead of x's (another backend's inputs of the same call).
    /// </summary>
    public static void ActivationBackward<T>(ActivationConstants<T> c, ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> dx, double[]? followSigns = null)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(dy, x.Length, nameof(dy));
        CheckLength(dx, x.Length, nameof(dx));
        for (int i = 0; i < x.Length; i++)
            dx[i] = dy[i] * Activations.Derivative(c, x[i], followSigns is null ? x[i] > T.Zero : followSigns[i] > 0);
    }

    /// <summary>
    /// Mean softmax cross-entropy of logits [n, classes] (cs231n <c>softmax_loss</c>: shifted logits minus
    /// log-sum-exp [CS]). Writes dlogits = (softmax - onehot) / n and returns the mean loss.
    /// </summary>
    public static T SoftmaxCrossEntropy<T>(ReadOnlySpan<T> logits, ReadOnlySpan<int> labels, Span<T> dlogits, int n, int classes)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(logits, (long)n * classes, nameof(logits));
        CheckLength(labels, n, nameof(labels));
        CheckLength(dlogits, (long)n * classes, nameof(dlogits));
        T total = T.Zero;
        T count = T.CreateChecked(n);
        for (int i = 0; i < n; i++)
        {
            int label = labels[i];
            if ((uint)label >= (uint)classes)
                throw new ArgumentOutOfRangeException(nameof(labels), label, $"label of sample {i} is outside 0..{classes - 1}");
            var row = logits.Slice(i * classes, classes);
            var grad = dlogits.Slice(i * classes, classes);
            T max = row[0];
            for (int c = 1; c < classes; c++) if (row[c] > max) max = row[c];
            T sumExp = T.Zero;
            for (int c = 0; c < classes; c++)
            {
                grad[c] = T.Exp(row[c] - max);
                sumExp += grad[c];
            }
            T logSumExp = T.Log(sumExp);
            total += logSumExp - (row[label] - max);
            for (int c = 0; c < classes; c++) grad[c] = grad[c] / sumExp / count;
            grad[label] -= T.One / count;
        }
        return total / count;
    }

    /// <summary>
    /// Mean softmax cross-entropy against smoothed targets q = (1 - e) onehot + e / classes (PyTorch
    /// CrossEntropyLoss(label_smoothing=e), Keras CategoricalCrossentropy(label_smoothing=e)): per sample
    /// log-sum-exp minus sum_c q_c z_c over the max-shifted logits; dlogits = (softmax - q) / n.
    /// </summary>
    public static T SmoothedSoftmaxCrossEntropy<T>(ReadOnlySpan<T> logits, ReadOnlySpan<int> labels, T smoothing, Span<T> dlogits, int n, int classes)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        SmoothedSoftmaxCrossEntropy(logits, labels, smoothing, classes, dlogits, n, classes);

    /// <summary>
    /// <see cref="SmoothedSoftmaxCrossEntropy{T}(ReadOnlySpan{T}, ReadOnlySpan{int}, T, Span{T}, int, int)"/> with the mass e
    /// spread over <paramref name="spreadOver"/> classes (e / spreadOver off the label, 1 - e + e / spreadOver on it): 2 is the
    /// binary form y(1 - e) + e/2 applied to one-hot targets (LossSpec.SmoothingClasses).
    /// </summary>
    public static T SmoothedSoftmaxCrossEntropy<T>(ReadOnlySpan<T> logits, ReadOnlySpan<int> labels, T smoothing, int spreadOver, Span<T> dlogits, int n, int classes)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(logits, (long)n * classes, nameof(logits));
        CheckLength(labels, n, nameof(labels));
        CheckLength(dlogits, (long)n * classes, nameof(dlogits));
        T total = T.Zero;
        T count = T.CreateChecked(n);
        T uniform = smoothing / T.CreateChecked(spreadOver), onTarget = T.One - smoothing + uniform;
        for (int i = 0; i < n; i++)
        {
            int label = labels[i];
            if ((uint)label >= (uint)classes)
                throw new ArgumentOutOfRangeException(nameof(labels), label, $"label of sample {i} is outside 0..{classes - 1}");
            var row = logits.Slice(i * classes, classes);
            var grad = dlogits.Slice(i * classes, classes);
            T max = row[0];
            for (int c = 1; c < classes; c++) if (row[c] > max) max = row[c];
            T sumExp = T.Zero;
            for (int c = 0; c < classes; c++)
            {
                grad[c] = T.Exp(row[c] - max);
                sumExp += grad[c];
            }
            T logSumExp = T.Log(sumExp);
            for (int c = 0; c < classes; c++)
            {
                T q = c == label ? onTarget : uniform;
                total += q * (logSumExp - (row[c] - max));
                grad[c] = (grad[c] / sumExp - q) / count;
            }
        }
        return total / count;
    }

    /// <summary>
    /// Mean squared error over ALL elements (PyTorch MSELoss 'mean'; Keras's per-sample mean over the last axis then the
    /// batch mean is the same number): sum (y - t)^2 / (n outputs); dy = 2 (y - t) / (n outputs).
    /// </summary>
    public static T MeanSquaredError<T>(ReadOnlySpan<T> outputs, ReadOnlySpan<T> targets, Span<T> doutputs)
        where T : unmanaged, IFloatingPointIeee754<T> => MeanSquaredError(outputs, targets, doutputs, outputs.Length);

    /// <summary>
    /// Squared error summed over all elements and divided by <paramref name="divisor"/>: the element count (the mean), 1
    /// (a sum) or the sample count (per-sample sums averaged over the batch).
    /// </summary>
    public static T MeanSquaredError<T>(ReadOnlySpan<T> outputs, ReadOnlySpan<T> targets, Span<T> doutputs, int divisor)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(targets, outputs.Length, nameof(targets));
        CheckLength(doutputs, outputs.Length, nameof(doutputs));
        T count = T.CreateChecked(divisor), two = T.CreateChecked(2);
        T total = T.Zero;
        for (int i = 0; i < outputs.Length; i++)
        {
            T d = outputs[i] - targets[i];
            total += d * d;
            doutputs[i] = two * d / count;
        }
        return total / count;
    }

    /// <summary>
    /// Binary cross-entropy from logits z against targets y in [0, 1], mean over ALL elements, in the fused form that
    /// never overflows (PyTorch BCEWithLogitsLoss, tf.nn.sigmoid_cross_entropy_with_logits):
    /// max(z, 0) - z y + log(1 + exp(-|z|)); dz = (sigmoid(z) - y) / (n outputs).
    /// </summary>
    public static T BinaryCrossEntropyWithLogits<T>(ReadOnlySpan<T> logits, ReadOnlySpan<T> targets, Span<T> dlogits)
        where T : unmanaged, IFloatingPointIeee754<T> => BinaryCrossEntropyWithLogits(logits, targets, dlogits, logits.Length);

    /// <summary>The binary cross-entropy summed over all elements and divided by <paramref name="divisor"/> (as <see cref="MeanSquaredError{T}(ReadOnlySpan{T}, ReadOnlySpan{T}, Span{T}, int)"/>).</summary>
    public static T BinaryCrossEntropyWithLogits<T>(ReadOnlySpan<T> logits, ReadOnlySpan<T> targets, Span<T> dlogits, int divisor)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(targets, logits.Length, nameof(targets));
        CheckLength(dlogits, logits.Length, nameof(dlogits));
        T count = T.CreateChecked(divisor);
        T total = T.Zero;
        for (int i = 0; i < logits.Length; i++)
        {
            T z = logits[i], y = targets[i];
            total += T.Max(z, T.Zero) - z * y + T.LogP1(T.Exp(-T.Abs(z)));
            dlogits[i] = (T.One / (T.One + T.Exp(-z)) - y) / count;
        }
        return total / count;
    }

    /// <summary>SGD with heavy-ball momentum in the PyTorch form: v = mu v + g; p -= lr v.</summary>
    public static void SgdUpdate<T>(Span<T> param, Span<T> velocity, ReadOnlySpan<T> grad, T lr, T momentum)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        SgdUpdate(param, velocity, grad, lr, momentum, momentum, nesterov: false);

    /// <summary>
    /// SGD with momentum in terms of the canonical buffer b: b = decay b + g, then p -= lr b, or with Nesterov
    /// p -= lr (g + mu b) [P10]. decay is mu in the PyTorch form and mu lr_{k-1} / lr_k in the Keras form
    /// (<see cref="SgdSpec.VelocityDecayAt"/>), which is Keras's m = mu m - lr g; p += m (or p += mu m - lr g) with
    /// m = -lr b [K3c].
    /// </summary>
    public static void SgdUpdate<T>(Span<T> param, Span<T> velocity, ReadOnlySpan<T> grad, T lr, T decay, T momentum, bool nesterov)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(velocity, param.Length, nameof(velocity));
        CheckLength(grad, param.Length, nameof(grad));
        for (int i = 0; i < param.Length; i++)
        {
            velocity[i] = decay * velocity[i] + grad[i];
            param[i] -= lr * (nesterov ? grad[i] + momentum * velocity[i] : velocity[i]);
        }
    }

    /// <summary>
    /// One Adam step with the constants of its update (<see cref="AdamSpec.ConstantsAt"/>, in T):
    /// m = d1 m + s1 g; v = d2 v + s2 g^2; then <see cref="EpsilonForm.SqrtVHat"/>: p -= lr (m/c1) / (sqrt(v/c2) + eps)
    /// (PyTorch [P5], TF.js [JS]); <see cref="EpsilonForm.EpsilonHat"/>: p -= lr sqrt(c2)/c1 m / (sqrt(v) + eps)
    /// (tf.keras [K2], TF1 [T5], Chainer [C]).
    /// </summary>
    public static void AdamUpdate<T>(Span<T> param, Span<T> m, Span<T> v, ReadOnlySpan<T> grad, T lr, AdamConstants<T> c, T eps, EpsilonForm form)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(m, param.Length, nameof(m));
        CheckLength(v, param.Length, nameof(v));
        CheckLength(grad, param.Length, nameof(grad));
        if (form == EpsilonForm.SqrtVHat)
        {
            for (int i = 0; i < param.Length; i++)
            {
                T g = grad[i];
                m[i] = c.Decay1 * m[i] + c.Scale1 * g;
                v[i] = c.Decay2 * v[i] + c.Scale2 * g * g;
                param[i] -= lr * (m[i] / c.Correction1) / (T.Sqrt(v[i] / c.Correction2) + eps);
            }
        }
        else
        {
            T alpha = lr * T.Sqrt(c.Correction2) / c.Correction1;
            for (int i = 0; i < param.Length; i++)
            {
                T g = grad[i];
                m[i] = c.Decay1 * m[i] + c.Scale1 * g;
                v[i] = c.Decay2 * v[i] + c.Scale2 * g * g;
                param[i] -= alpha * m[i] / (T.Sqrt(v[i]) + eps);
            }
        }
    }

    /// <summary>
    /// One RMSprop step (<see cref="RmspropSpec"/>) in the PyTorch order of operations [P10]: v = rho v + (1-rho) g^2;
    /// centered a = rho a + (1-rho) g and s = v - a^2, else s = v; d = sqrt(s) + eps or sqrt(s + eps); with momentum
    /// b = mu b + g / d, p -= lr b; else p -= lr g / d. <paramref name="momentum"/> and <paramref name="meanGradient"/> are
    /// empty when unused.
    /// </summary>
    public static void RmspropUpdate<T>(Span<T> param, ReadOnlySpan<T> grad, RmspropSpec spec, Span<T> meanSquare, Span<T> momentum, Span<T> meanGradient)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(spec);
        CheckLength(grad, param.Length, nameof(grad));
        CheckLength(meanSquare, param.Length, nameof(meanSquare));
        if (spec.Momentum > 0) CheckLength(momentum, param.Length, nameof(momentum));
        if (spec.Centered) CheckLength(meanGradient, param.Length, nameof(meanGradient));
        T lr = T.CreateTruncating(spec.LearningRate), rho = T.CreateTruncating(spec.Rho), scale = T.CreateTruncating(1 - spec.Rho);
        T eps = T.CreateTruncating(spec.Eps), mu = T.CreateTruncating(spec.Momentum);
        bool inside = spec.EpsilonPlacement == EpsilonPlacement.Inside;
        for (int i = 0; i < param.Length; i++)
        {
            T g = grad[i];
            meanSquare[i] = rho * meanSquare[i] + scale * g * g;
            T s = meanSquare[i];
            if (spec.Centered)
            {
                meanGradient[i] = rho * meanGradient[i] + scale * g;
                s -= meanGradient[i] * meanGradient[i];
            }
            T d = inside ? T.Sqrt(s + eps) : T.Sqrt(s) + eps;
            if (spec.Momentum > 0)
            {
                momentum[i] = mu * momentum[i] + g / d;
                param[i] -= lr * momentum[i];
            }
            else
            {
                param[i] -= lr * (g / d);
            }
        }
    }

    /// <summary>One Adagrad step (<see cref="AdagradSpec"/>) [P10]: s += g^2; p -= lr g / (sqrt(s) + eps) or lr g / sqrt(s + eps).</summary>
    public static void AdagradUpdate<T>(Span<T> param, ReadOnlySpan<T> grad, AdagradSpec spec, Span<T> accumulator)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(spec);
        CheckLength(grad, param.Length, nameof(grad));
        CheckLength(accumulator, param.Length, nameof(accumulator));
        T lr = T.CreateTruncating(spec.LearningRate), eps = T.CreateTruncating(spec.Eps);
        bool inside = spec.EpsilonPlacement == EpsilonPlacement.Inside;
        for (int i = 0; i < param.Length; i++)
        {
            T g = grad[i];
            accumulator[i] += g * g;
            param[i] -= lr * (g / (inside ? T.Sqrt(accumulator[i] + eps) : T.Sqrt(accumulator[i]) + eps));
        }
    }

    internal static void LinearForward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> b, Span<T> y, int n, int inW, int outW, ParallelOptions parallel)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        // y[i, o] = sum_k x[i, k] W^T[k, o] + b[o]: W read transposed in place (row stride 1, column stride inW).
        MatrixProduct.Multiply(x, inW, 1, w, 1, inW, y, outW, b, n, outW, inW, parallel);
    }

    internal static void LinearBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> dy, Span<T> dx, Span<T> dw, Span<T> db,
        int n, int inW, int outW, ParallelOptions parallel)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        // dW[o, j] = sum_i dy[i, o] x[i, j]: dy read transposed in place (row stride 1, column stride outW).
        MatrixProduct.Multiply<T>(dy, 1, outW, x, inW, 1, dw, inW, [], outW, inW, n, parallel);
        // dx[i, j] = sum_o dy[i, o] W[o, j].
        if (!dx.IsEmpty) MatrixProduct.Multiply<T>(dy, outW, 1, w, inW, 1, dx, inW, [], n, inW, outW, parallel);
        if (db.IsEmpty) return;
        // db[o] = sum_i dy[i, o], rows added in order.
        db.Clear();
        for (int i = 0; i < n; i++) TensorPrimitives.Add(db, dy.Slice(i * outW, outW), db);
    }

    private static void Affine<T>(ReadOnlySpan<T> xhat, ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (gamma.IsEmpty)
        {
            xhat.CopyTo(y);
            return;
        }
        TensorPrimitives.MultiplyAdd(xhat, gamma, beta, y);
    }

    private static void CheckAffine<T>(ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta, int f)
    {
        if (gamma.IsEmpty != beta.IsEmpty) throw new ArgumentException("gamma and beta must both be given or both be empty", nameof(beta));
        if (!gamma.IsEmpty)
        {
            CheckLength(gamma, f, nameof(gamma));
            CheckLength(beta, f, nameof(beta));
        }
    }

    private static void CheckLength<T>(ReadOnlySpan<T> span, long expected, string name)
    {
        if (span.Length != expected) throw new ArgumentException($"{name} holds {span.Length} elements; expected {expected}", name);
    }
}

/// <summary>The constants of one Adam update in precision T: <see cref="AdamConstants"/> rounded once.</summary>
/// <param name="Decay1">beta1 as the decay of m.</param>
/// <param name="Decay2">beta2 as the decay of v.</param>
/// <param name="Scale1">1 - beta1.</param>
/// <param name="Scale2">1 - beta2.</param>
/// <param name="Correction1">1 - beta1^t.</param>
/// <param name="Correction2">1 - beta2^t.</param>
public readonly record struct AdamConstants<T>(T Decay1, T Decay2, T Scale1, T Scale2, T Correction1, T Correction2)
    where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>The float64 constants rounded to T.</summary>
    public static AdamConstants<T> From(AdamConstants c) => new(T.CreateTruncating(c.Decay1), T.CreateTruncating(c.Decay2), T.CreateTruncating(c.Scale1),
        T.CreateTruncating(c.Scale2), T.CreateTruncating(c.Correction1), T.CreateTruncating(c.Correction2));
}
