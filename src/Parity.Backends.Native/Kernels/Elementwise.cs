using System.Numerics;
using ILGPU;
using Parity.Models;

namespace Parity.Backends.Native.Kernels;

/// <summary>
/// Relu where it cannot be fused into the producing kernel (e.g. relu after relu, or as the first call), and the other
/// activations, whose formulas are the reference's own (<see cref="Activations"/>).
/// </summary>
public static class Activation
{
    /// <summary>y = f(x).</summary>
    public static void ActivationForward<T>(Index1D index, ArrayView<T> input, ArrayView<T> output, ActivationConstants<T> c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        output[index] = Activations.Forward(c, input[index]);
    }

    /// <summary>dx = dy f'(x), the branch of a kinked function picked by x &gt; 0.</summary>
    public static void ActivationBackward<T>(Index1D index, ArrayView<T> input, ArrayView<T> outputGradient, ArrayView<T> inputGradient, ActivationConstants<T> c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T x = input[index];
        inputGradient[index] = outputGradient[index] * Activations.Derivative(c, x, x > T.Zero);
    }

    /// <summary>y = max(x, 0).</summary>
    public static void ReluForward<T>(Index1D index, ArrayView<T> input, ArrayView<T> output)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T x = input[index];
        output[index] = x > T.Zero ? x : T.Zero;
    }

    /// <summary>dx = dy where the relu output is positive, else 0.</summary>
    public static void ReluBackward<T>(Index1D index, ArrayView<T> output, ArrayView<T> outputGradient, ArrayView<T> inputGradient)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        inputGradient[index] = output[index] > T.Zero ? outputGradient[index] : T.Zero;
    }
}

/// <summary>Sizes of a loss launch.</summary>
public struct LossShape
{
    /// <summary>Rows (batch size).</summary>
    public int Rows;

    /// <summary>Classes.</summary>
    public int Classes;

    /// <summary>1 to write d(loss)/d(logits) (train mode).</summary>
    public int WriteGradient;

    /// <summary>The element-wise loss of <see cref="ElementWiseLoss"/>: <see cref="ElementWiseLoss.MeanSquaredError"/> or <see cref="ElementWiseLoss.BinaryCrossEntropyWithLogits"/>.</summary>
    public int Function;

    /// <summary>1 to count argmax = label into the accuracy (the targets are one-hot labels).</summary>
    public int CountCorrect;
}

/// <summary>Host-computed constants of <see cref="ElementWiseLoss"/> (the kernels cannot convert integers to T).</summary>
public struct LossScalars<T>
    where T : unmanaged
{
    /// <summary>Rows, as T.</summary>
    public T Rows;

    /// <summary>Rows x width: the element count the element-wise losses average over.</summary>
    public T Count;

    /// <summary>e / classes: the smoothed target of every class.</summary>
    public T Uniform;

    /// <summary>1 - e + e / classes: the smoothed target of the label.</summary>
    public T OnTarget;
}

/// <summary>
/// The losses beyond plain softmax cross-entropy, each forward and backward in one launch of one group, tree-reduced like
/// <see cref="Loss.SoftmaxCrossEntropy"/>, in the reference's formulas and rounding order (ReferenceOps).
/// </summary>
public static class ElementWiseLoss
{
    /// <summary><see cref="LossShape.Function"/> of mean squared error.</summary>
    public const int MeanSquaredError = 0;

    /// <summary><see cref="LossShape.Function"/> of binary cross-entropy from logits.</summary>
    public const int BinaryCrossEntropyWithLogits = 1;

    /// <summary>
    /// Mean over ALL elements of (y - t)^2 (gradient 2 (y - t) / count) or of max(z, 0) - z t + log(1 + exp(-|z|))
    /// (gradient (sigmoid(z) - t) / count); with <see cref="LossShape.CountCorrect"/>, the first maximal output of each row
    /// against its label. <paramref name="scalars"/> receives [mean loss, accuracy].
    /// </summary>
    public static void Compute<T>(ArrayView<T> outputs, ArrayView<T> targets, ArrayView<int> labels, ArrayView<T> outputGradient,
        ArrayView<T> scalars, LossShape shape, LossScalars<T> constants)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T count = constants.Count;
        var first = SharedMemory.Allocate<T>(GroupReduction.MaxThreads);
        var second = SharedMemory.Allocate<T>(GroupReduction.MaxThreads);
        int tid = Group.IdxX, threads = Group.DimX, width = shape.Classes;
        T two = T.One + T.One;
        T lossSum = T.Zero, correct = T.Zero;
        for (int i = tid; i < shape.Rows; i += threads)
        {
            int start = i * width, argmax = 0;
            for (int k = 0; k < width; k++)
            {
                T y = outputs[start + k], t = targets[start + k];
                if (y > outputs[start + argmax]) argmax = k;
                if (shape.Function == MeanSquaredError)
                {
                    T d = y - t;
                    lossSum += d * d;
                    if (shape.WriteGradient != 0) outputGradient[start + k] = two * d / count;
                }
                else
                {
                    lossSum += T.Max(y, T.Zero) - y * t + T.Log(T.One + T.Exp(-T.Abs(y)));
                    if (shape.WriteGradient != 0) outputGradient[start + k] = (T.One / (T.One + T.Exp(-y)) - t) / count;
                }
            }
            if (shape.CountCorrect != 0 && argmax == labels[i]) correct += T.One;
        }
        (lossSum, correct) = GroupReduction.SumGroup2(first, second, lossSum, correct);
        if (tid == 0)
        {
            scalars[0] = lossSum / count;
            scalars[1] = correct / constants.Rows;
        }
    }

    /// <summary>
    /// Softmax cross-entropy against (1 - e) onehot + e / classes: per row log-sum-exp minus sum_c q_c z_c (max-shifted),
    /// gradient (softmax - q) / N; [mean loss, accuracy] into <paramref name="scalars"/>.
    /// </summary>
    public static void SmoothedSoftmaxCrossEntropy<T>(ArrayView<T> logits, ArrayView<int> labels, ArrayView<T> logitGradient,
        ArrayView<T> scalars, LossShape shape, LossScalars<T> constants)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T rows = constants.Rows, uniform = constants.Uniform, onTarget = constants.OnTarget;
        var first = SharedMemory.Allocate<T>(GroupReduction.MaxThreads);
        var second = SharedMemory.Allocate<T>(GroupReduction.MaxThreads);
        int tid = Group.IdxX, threads = Group.DimX, classes = shape.Classes;
        T lossSum = T.Zero, correct = T.Zero;
        for (int i = tid; i < shape.Rows; i += threads)
        {
            int start = i * classes;
            T max = logits[start];
            int argmax = 0;
            for (int k = 1; k < classes; k++)
            {
                if (logits[start + k] > max)
                {
                    max = logits[start + k];
                    argmax = k;
                }
            }
            T sumExp = T.Zero;
            for (int k = 0; k < classes; k++) sumExp += T.Exp(logits[start + k] - max);
            T logSumExp = T.Log(sumExp);
            int label = labels[i];
            for (int k = 0; k < classes; k++)
            {
                T q = k == label ? onTarget : uniform;
                lossSum += q * (logSumExp - (logits[start + k] - max));
                if (shape.WriteGradient != 0) logitGradient[start + k] = (T.Exp(logits[start + k] - max) / sumExp - q) / rows;
            }
            if (argmax == label) correct += T.One;
        }
        (lossSum, correct) = GroupReduction.SumGroup2(first, second, lossSum, correct);
        if (tid == 0)
        {
            scalars[0] = lossSum / rows;
            scalars[1] = correct / rows;
        }
    }
}

/// <summary>Softmax cross-entropy with the mean reduction, forward and backward in one launch.</summary>
public static class Loss
{
    /// <summary>
    /// One group for the whole batch: each thread takes rows tid, tid + threads, ...; per row the max-shifted
    /// log-sum-exp gives the loss (as log_softmax + NLL in PyTorch [P6]), (softmax - onehot) / N the gradient,
    /// and the first maximal logit the prediction. The loss sum and the correct count are tree-reduced, so the
    /// result is deterministic. <paramref name="scalars"/> receives [mean loss, accuracy].
    /// </summary>
    public static void SoftmaxCrossEntropy<T>(ArrayView<T> logits, ArrayView<int> labels, ArrayView<T> logitGradient,
        ArrayView<T> scalars, LossShape shape, T rows)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var first = SharedMemory.Allocate<T>(GroupReduction.MaxThreads);
        var second = SharedMemory.Allocate<T>(GroupReduction.MaxThreads);
        int tid = Group.IdxX, threads = Group.DimX, classes = shape.Classes;

        T lossSum = T.Zero, correct = T.Zero;
        for (int i = tid; i < shape.Rows; i += threads)
        {
            int start = i * classes;
            T max = logits[start];
            int argmax = 0;
            for (int k = 1; k < classes; k++)
            {
                if (logits[start + k] > max)
                {
                    max = logits[start + k];
                    argmax = k;
                }
            }
            T sumExp = T.Zero;
            for (int k = 0; k < classes; k++) sumExp += T.Exp(logits[start + k] - max);
            int label = labels[i];
            lossSum += T.Log(sumExp) - (logits[start + label] - max);
            if (argmax == label) correct += T.One;
            if (shape.WriteGradient != 0)
            {
                for (int k = 0; k < classes; k++)
                {
                    // (softmax - onehot) / N, rounded as the reference forms it: e / sum / N, then 1 / N off the label.
                    T g = T.Exp(logits[start + k] - max) / sumExp / rows;
                    logitGradient[start + k] = k == label ? g - T.One / rows : g;
                }
            }
        }
        (lossSum, correct) = GroupReduction.SumGroup2(first, second, lossSum, correct);
        if (tid == 0)
        {
            scalars[0] = lossSum / rows;
            scalars[1] = correct / rows;
        }
    }
}

/// <summary>Host-computed constants of one optimizer step.</summary>
public struct OptimizerScalars<T>
    where T : unmanaged
{
    /// <summary>0: SGD with momentum; 1: Adam, sqrt(v-hat) form; 2: Adam, epsilon-hat form.</summary>
    public int Rule;

    /// <summary>Learning rate.</summary>
    public T LearningRate;

    /// <summary>The SGD momentum buffer's decay (<see cref="Specs.SgdSpec.VelocityDecayAt"/>), or Adam beta1.</summary>
    public T Beta1;

    /// <summary>SGD momentum mu in the Nesterov step.</summary>
    public T Momentum;

    /// <summary>1: SGD takes the Nesterov step p -= lr (g + mu b); 0: p -= lr b.</summary>
    public int Nesterov;

    /// <summary>1 - beta1.</summary>
    public T OneMinusBeta1;

    /// <summary>Adam beta2.</summary>
    public T Beta2;

    /// <summary>1 - beta2.</summary>
    public T OneMinusBeta2;

    /// <summary>Adam eps.</summary>
    public T Eps;

    /// <summary>1 - beta1^t.</summary>
    public T BiasCorrection1;

    /// <summary>1 - beta2^t.</summary>
    public T BiasCorrection2;

    /// <summary>lr sqrt(1 - beta2^t) / (1 - beta1^t): the epsilon-hat step size alpha_t.</summary>
    public T StepSize;
}

/// <summary>Host-computed constants of one RMSprop or Adagrad step (<see cref="Optimizer.AdaptiveUpdate"/>).</summary>
public struct AdaptiveScalars<T>
    where T : unmanaged
{
    /// <summary><see cref="Optimizer.Rmsprop"/> or <see cref="Optimizer.Adagrad"/>.</summary>
    public int Rule;

    /// <summary>Learning rate.</summary>
    public T LearningRate;

    /// <summary>RMSprop's decay rho of the mean square.</summary>
    public T Rho;

    /// <summary>1 - rho.</summary>
    public T OneMinusRho;

    /// <summary>eps.</summary>
    public T Eps;

    /// <summary>RMSprop's momentum mu.</summary>
    public T Momentum;

    /// <summary>1: eps inside the square root; 0: outside.</summary>
    public int Inside;

    /// <summary>1: centered RMSprop (the mean-gradient slot is used).</summary>
    public int Centered;

    /// <summary>1: RMSprop with momentum (the momentum slot is used).</summary>
    public int UseMomentum;
}

/// <summary>The whole optimizer update of every parameter in one launch (parameters are one flat device buffer).</summary>
public static class Optimizer
{
    /// <summary>RMSprop rule of <see cref="AdaptiveUpdate"/>.</summary>
    public const int Rmsprop = 10;

    /// <summary>Adagrad rule of <see cref="AdaptiveUpdate"/>.</summary>
    public const int Adagrad = 11;

    /// <summary>
    /// One thread per parameter element, in the reference's order of operations (ReferenceOps.RmspropUpdate,
    /// AdagradUpdate). RMSprop: v = rho v + (1-rho) g^2 (<paramref name="first"/>); centered a = rho a + (1-rho) g
    /// (<paramref name="third"/>) and s = v - a^2, else s = v; d = sqrt(s) + eps or sqrt(s + eps); with momentum
    /// b = mu b + g / d (<paramref name="second"/>), p -= lr b; else p -= lr (g / d). Adagrad: acc += g^2
    /// (<paramref name="first"/>); p -= lr (g / d).
    /// </summary>
    public static void AdaptiveUpdate<T>(Index1D index, ArrayView<T> parameters, ArrayView<T> gradients, ArrayView<T> first,
        ArrayView<T> second, ArrayView<T> third, AdaptiveScalars<T> c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T g = gradients[index];
        T s;
        if (c.Rule == Adagrad)
        {
            s = first[index] + g * g;
            first[index] = s;
        }
        else
        {
            s = c.Rho * first[index] + c.OneMinusRho * g * g;
            first[index] = s;
            if (c.Centered != 0)
            {
                T a = c.Rho * third[index] + c.OneMinusRho * g;
                third[index] = a;
                s -= a * a;
            }
        }
        T d = c.Inside != 0 ? T.Sqrt(s + c.Eps) : T.Sqrt(s) + c.Eps;
        if (c.UseMomentum != 0)
        {
            T b = c.Momentum * second[index] + g / d;
            second[index] = b;
            parameters[index] -= c.LearningRate * b;
        }
        else
        {
            parameters[index] -= c.LearningRate * (g / d);
        }
    }

    /// <summary>SGD rule.</summary>
    public const int Sgd = 0;

    /// <summary>Adam, PyTorch form.</summary>
    public const int AdamSqrtVHat = 1;

    /// <summary>Adam, TF / Chainer form.</summary>
    public const int AdamEpsilonHat = 2;

    /// <summary>
    /// One thread per parameter element. SGD (PyTorch form): v = mu v + g; p -= lr v. Adam [P5, K2]:
    /// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; then p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    /// or p -= alpha_t m / (sqrt(v) + eps). <paramref name="first"/> is the SGD velocity or Adam's m.
    /// </summary>
    public static void Update<T>(Index1D index, ArrayView<T> parameters, ArrayView<T> gradients, ArrayView<T> first,
        ArrayView<T> second, OptimizerScalars<T> c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T g = gradients[index];
        if (c.Rule == Sgd)
        {
            T velocity = c.Beta1 * first[index] + g;
            first[index] = velocity;
            parameters[index] -= c.LearningRate * (c.Nesterov != 0 ? g + c.Momentum * velocity : velocity);
            return;
        }
        T m = c.Beta1 * first[index] + c.OneMinusBeta1 * g;
        T v = c.Beta2 * second[index] + c.OneMinusBeta2 * g * g;
        first[index] = m;
        second[index] = v;
        if (c.Rule == AdamSqrtVHat)
            parameters[index] -= c.LearningRate * (m / c.BiasCorrection1) / (T.Sqrt(v / c.BiasCorrection2) + c.Eps);
        else
            parameters[index] -= c.StepSize * m / (T.Sqrt(v) + c.Eps);
    }
}
