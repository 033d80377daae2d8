using System.Numerics;
using ILGPU;
using ILGPU.Runtime;
using Parity.Backends.Native.Kernels;
using Parity.Models;

namespace Parity.Backends.Native;

/// <summary>
/// The training kernels of one element type compiled for one accelerator, with typed launchers. Views with
/// length 0 mean "absent" (no bias, no input gradient, no fused relu). Every launcher enqueues exactly the
/// launches its summary names and counts them in <see cref="Launches"/>; nothing here synchronizes.
/// </summary>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
public sealed class NativeKernels<T> : IDisposable
    where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly MemoryBuffer1D<T, Stride1D.Dense> _unused;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _unusedLabels;
    private readonly Action<KernelConfig, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ProductShape> _product;
    private readonly Action<KernelConfig, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ProductShape> _blockedProduct;
    private readonly Action<KernelConfig, BatchNormTrainViews<T>, NormShape, NormScalars<T>> _batchNormTrain;
    private readonly Action<KernelConfig, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, NormShape, NormScalars<T>> _batchNormBackward;
    private readonly Action<Index1D, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, NormShape, NormScalars<T>> _batchNormEval;
    private readonly Action<KernelConfig, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, NormShape, NormScalars<T>> _layerNormForward;
    private readonly Action<KernelConfig, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, NormShape, NormScalars<T>> _layerNormBackward;
    private readonly Action<KernelConfig, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, NormShape> _scaleShiftGradients;
    private readonly Action<Index1D, ArrayView<T>, ArrayView<T>> _reluForward;
    private readonly Action<Index1D, ArrayView<T>, ArrayView<T>, ArrayView<T>> _reluBackward;
    // Compiled at first use: only a model with such an activation pays for (or can be refused by) their compilation.
    // Compiled at the first RMSprop or Adagrad step only: other runs do not pay for it.
    private readonly Lazy<Action<Index1D, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, AdaptiveScalars<T>>> _adaptiveOptimizer;
    private readonly Lazy<Action<Index1D, ArrayView<T>, ArrayView<T>, ActivationConstants<T>>> _activationForward;
    private readonly Lazy<Action<Index1D, ArrayView<T>, ArrayView<T>, ArrayView<T>>> _maskMultiply;
    private readonly Lazy<Action<Index1D, ArrayView<T>, ArrayView<T>, ArrayView<T>, ActivationConstants<T>>> _activationBackward;
    private readonly Action<KernelConfig, ArrayView<T>, ArrayView<int>, ArrayView<T>, ArrayView<T>, LossShape, T> _loss;
    private readonly Lazy<Action<KernelConfig, ArrayView<T>, ArrayView<T>, ArrayView<int>, ArrayView<T>, ArrayView<T>, LossShape, LossScalars<T>>> _elementWiseLoss;
    private readonly Lazy<Action<KernelConfig, ArrayView<T>, ArrayView<int>, ArrayView<T>, ArrayView<T>, LossShape, LossScalars<T>>> _smoothedLoss;
    private readonly Action<Index1D, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, OptimizerScalars<T>> _optimizer;
    // Compiled at first use: only a run with weight decay pays for them.
    private readonly Lazy<Action<Index1D, ArrayView<T>, T>> _shrink;
    private readonly Lazy<Action<Index1D, ArrayView<T>, ArrayView<T>, T>> _gradientTerm;
    private readonly Lazy<Action<KernelConfig, ArrayView<T>, ArrayView<T>, T>> _lossTerm;

    /// <summary>Compiles every kernel for <paramref name="accelerator"/> (the activation kernels at their first launch).</summary>
    /// <param name="accelerator">The device.</param>
    /// <param name="reductionLanes">
    /// Lanes per column of the reduction kernels (a group is <see cref="GroupReduction.Columns"/> x lanes threads): a
    /// power of two up to <see cref="GroupReduction.MaxThreads"/> / <see cref="GroupReduction.Columns"/>.
    /// </param>
    public NativeKernels(Accelerator accelerator, int reductionLanes)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        const int maxLanes = GroupReduction.MaxThreads / GroupReduction.Columns;
        if (reductionLanes < 1 || reductionLanes > maxLanes || (reductionLanes & (reductionLanes - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(reductionLanes), $"{reductionLanes} is not a power of two in 1..{maxLanes}");
        ReductionLanes = reductionLanes;
        _unused = accelerator.Allocate1D<T>(1);
        _unusedLabels = accelerator.Allocate1D<int>(1);
        _product = accelerator.LoadStreamKernel<ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ProductShape>(TiledProduct.Product);
        _blockedProduct = accelerator.LoadStreamKernel<ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ProductShape>(BlockedProduct.Product);
        BlockedProductMinimumTiles = accelerator.NumMultiprocessors;
        _batchNormTrain = accelerator.LoadStreamKernel<BatchNormTrainViews<T>, NormShape, NormScalars<T>>(Normalization.BatchNormForwardTrain);
        _batchNormBackward = accelerator.LoadStreamKernel<ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, NormShape, NormScalars<T>>(Normalization.BatchNormBackward);
        _batchNormEval = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, NormShape, NormScalars<T>>(Normalization.BatchNormForwardEval);
        _layerNormForward = accelerator.LoadStreamKernel<ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, NormShape, NormScalars<T>>(Normalization.LayerNormForward);
        _layerNormBackward = accelerator.LoadStreamKernel<ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, NormShape, NormScalars<T>>(Normalization.LayerNormBackward);
        _scaleShiftGradients = accelerator.LoadStreamKernel<ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, NormShape>(Normalization.ScaleShiftGradients);
        _reluForward = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<T>, ArrayView<T>>(Activation.ReluForward);
        _reluBackward = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<T>, ArrayView<T>, ArrayView<T>>(Activation.ReluBackward);
        _adaptiveOptimizer = new(() => accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>,
            AdaptiveScalars<T>>(Optimizer.AdaptiveUpdate));
        _maskMultiply = new(() => accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<T>, ArrayView<T>, ArrayView<T>>(Masking.Multiply));
        _activationForward = new(() => CompileActivation(accelerator, () =>
            accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<T>, ArrayView<T>, ActivationConstants<T>>(Activation.ActivationForward)));
        _activationBackward = new(() => CompileActivation(accelerator, () =>
            accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<T>, ArrayView<T>, ArrayView<T>, ActivationConstants<T>>(Activation.ActivationBackward)));
        _loss = accelerator.LoadStreamKernel<ArrayView<T>, ArrayView<int>, ArrayView<T>, ArrayView<T>, LossShape, T>(Loss.SoftmaxCrossEntropy);
        // Compiled on first use: most runs use plain softmax cross-entropy.
        _elementWiseLoss = new(() => accelerator.LoadStreamKernel<ArrayView<T>, ArrayView<T>, ArrayView<int>, ArrayView<T>, ArrayView<T>, LossShape, LossScalars<T>>(ElementWiseLoss.Compute));
        _smoothedLoss = new(() => accelerator.LoadStreamKernel<ArrayView<T>, ArrayView<int>, ArrayView<T>, ArrayView<T>, LossShape, LossScalars<T>>(ElementWiseLoss.SmoothedSoftmaxCrossEntropy));
        _optimizer = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<T>, ArrayView<T>, ArrayView<T>, ArrayView<T>, OptimizerScalars<T>>(Optimizer.Update);
        _shrink = new(() => accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<T>, T>(WeightDecay.Shrink));
        _gradientTerm = new(() => accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<T>, ArrayView<T>, T>(WeightDecay.AddGradientTerm));
        _lossTerm = new(() => accelerator.LoadStreamKernel<ArrayView<T>, ArrayView<T>, T>(WeightDecay.AddLossTerm));
    }

    // The activation formulas call T.Tanh and T.Exp, whose support depends on the accelerator's backend: a refusal names it.
    private static TKernel CompileActivation<TKernel>(Accelerator accelerator, Func<TKernel> load)
    {
        try
        {
            return load();
        }
        catch (Exception e) when (e is not OutOfMemoryException and not BackendException)
        {
            throw new BackendException($"native: the activation kernels do not compile for {accelerator.Name}: {e.Message}", e);
        }
    }

    /// <summary>Lanes per column of the reduction kernels; fixed per device, so sums are bit-identical on reruns.</summary>
    public int ReductionLanes { get; }

    /// <summary>
    /// Products whose C has at least this many <see cref="BlockedProduct.BlockRows"/> x <see cref="BlockedProduct.BlockCols"/>
    /// tiles run <see cref="BlockedProduct"/>; smaller ones the 16 x 16 <see cref="TiledProduct"/>, whose many small groups
    /// keep every multiprocessor busy where a few big tiles would leave most idle (784-100-100-10 at batch 1000 has
    /// 8 such tiles on the H100's 132 multiprocessors). Default: the device's multiprocessor count (1 on the CPU
    /// accelerator, so there every product but an empty one is blocked). Both kernels sum in the same order.
    /// </summary>
    public int BlockedProductMinimumTiles { get; set; }

    /// <summary>Kernel launches enqueued so far.</summary>
    public long Launches { get; private set; }

    /// <summary>y = x W^T + b (b absent: no bias), W [outW, inW]; with <paramref name="reluOutput"/>, also max(y, 0). One launch.</summary>
    public void LinearForward(ArrayView<T> x, ArrayView<T> w, ArrayView<T> b, ArrayView<T> y, int n, int inW, int outW, ArrayView<T> reluOutput = default)
    {
        var shape = new ProductShape
        {
            Rows = n, Cols = outW, Inner = inW,
            ARowStride = inW, AInnerStride = 1, BInnerStride = 1, BColStride = inW,
            AddBias = Present(b) ? 1 : 0,
            Second = Present(reluOutput) ? SecondOutput.Relu : SecondOutput.None,
        };
        Product(x, w, y, b, reluOutput, default, default, shape);
    }

    /// <summary>
    /// dX = dY W [n, inW]; with <paramref name="reluOutput"/> (the output of a relu call whose output is X), also the
    /// gradient at that relu's input into <paramref name="maskedInputGradient"/> (relu backward fused). One launch.
    /// </summary>
    public void LinearInputGradient(ArrayView<T> dy, ArrayView<T> w, ArrayView<T> dx, int n, int inW, int outW,
        ArrayView<T> reluOutput = default, ArrayView<T> maskedInputGradient = default)
    {
        bool masked = Present(reluOutput) && Present(maskedInputGradient);
        var shape = new ProductShape
        {
            Rows = n, Cols = inW, Inner = outW,
            ARowStride = outW, AInnerStride = 1, BInnerStride = inW, BColStride = 1,
            Second = masked ? SecondOutput.ReluMask : SecondOutput.None,
        };
        Product(dy, w, dx, default, maskedInputGradient, reluOutput, default, shape);
    }

    /// <summary>
    /// dW = dY^T X [outW, inW] and, when <paramref name="db"/> is present, db = sum over rows of dY, in the same
    /// launch (a ones column appended to X). <paramref name="accumulate"/> adds to the existing gradients. One launch.
    /// </summary>
    public void LinearParameterGradients(ArrayView<T> x, ArrayView<T> dy, ArrayView<T> dw, ArrayView<T> db, int n, int inW, int outW, bool accumulate)
    {
        var shape = new ProductShape
        {
            Rows = outW, Cols = inW, Inner = n,
            ARowStride = 1, AInnerStride = outW, BInnerStride = inW, BColStride = 1,
            Accumulate = accumulate ? 1 : 0,
            OnesColumn = Present(db) ? 1 : 0,
        };
        Product(dy, x, dw, default, default, default, db, shape);
    }

    /// <summary>
    /// Batchnorm train forward with the running-statistics update of this call; gamma/beta absent: not affine;
    /// <paramref name="views"/>.ReluOutput present: relu fused. One launch (a group column per feature).
    /// </summary>
    public void BatchNormForwardTrain(BatchNormTrainViews<T> views, int n, int features, T eps, T momentum, bool unbiasedRunningVariance)
    {
        bool affine = Present(views.Gamma);
        var shape = new NormShape { Rows = n, Features = features, Affine = affine ? 1 : 0, Relu = Present(views.ReluOutput) ? 1 : 0 };
        views.Gamma = OrUnused(views.Gamma);
        views.Beta = OrUnused(views.Beta);
        views.ReluOutput = OrUnused(views.ReluOutput);
        var scalars = Scalars(eps, n, momentum, unbiasedRunningVariance && n > 1 ? (double)n / (n - 1) : 1.0);
        Count(1);
        _batchNormTrain(Reduction(features), views, shape, scalars);
    }

    /// <summary>Batchnorm backward (cs231n simplified form); dx absent: parameter gradients only. One launch.</summary>
    public void BatchNormBackward(ArrayView<T> dy, ArrayView<T> normalized, ArrayView<T> gamma, ArrayView<T> batchVariance, T eps,
        ArrayView<T> dx, ArrayView<T> dgamma, ArrayView<T> dbeta, int n, int features, bool accumulate)
    {
        var shape = new NormShape
        {
            Rows = n, Features = features, Affine = Present(gamma) ? 1 : 0,
            WriteInputGradient = Present(dx) ? 1 : 0, Accumulate = accumulate ? 1 : 0,
        };
        Count(1);
        _batchNormBackward(Reduction(features), dy, normalized, OrUnused(gamma), batchVariance, OrUnused(dx), OrUnused(dgamma), OrUnused(dbeta),
            shape, Scalars(eps, n, T.Zero, 1.0));
    }

    /// <summary>Batchnorm eval forward with running statistics (relu fused when <paramref name="reluOutput"/> is present). One launch.</summary>
    public void BatchNormForwardEval(ArrayView<T> x, ArrayView<T> gamma, ArrayView<T> beta, ArrayView<T> runningMean, ArrayView<T> runningVariance,
        T eps, ArrayView<T> y, int n, int features, ArrayView<T> reluOutput = default)
    {
        var shape = new NormShape { Rows = n, Features = features, Affine = Present(gamma) ? 1 : 0, Relu = Present(reluOutput) ? 1 : 0 };
        Count(1);
        _batchNormEval(checked(n * features), x, OrUnused(gamma), OrUnused(beta), runningMean, runningVariance, y, OrUnused(reluOutput), shape,
            Scalars(eps, n, T.Zero, 1.0));
    }

    /// <summary>Layernorm forward; keeps x-hat [n, f] and 1/std [n]; relu fused when <paramref name="reluOutput"/> is present. One launch.</summary>
    public void LayerNormForward(ArrayView<T> x, ArrayView<T> gamma, ArrayView<T> beta, T eps, ArrayView<T> y, ArrayView<T> normalized,
        ArrayView<T> inverseStd, int n, int features, ArrayView<T> reluOutput = default)
    {
        var shape = new NormShape { Rows = n, Features = features, Affine = Present(gamma) ? 1 : 0, Relu = Present(reluOutput) ? 1 : 0 };
        Count(1);
        _layerNormForward(Reduction(n), x, OrUnused(gamma), OrUnused(beta), y, normalized, inverseStd, OrUnused(reluOutput), shape,
            Scalars(eps, features, T.Zero, 1.0));
    }

    /// <summary>
    /// Layernorm backward: dx (when present; one launch, a group column per row) and dgamma, dbeta (when gamma is
    /// present; one launch, a group column per feature).
    /// </summary>
    public void LayerNormBackward(ArrayView<T> dy, ArrayView<T> normalized, ArrayView<T> gamma, ArrayView<T> inverseStd,
        ArrayView<T> dx, ArrayView<T> dgamma, ArrayView<T> dbeta, int n, int features, bool accumulate)
    {
        var shape = new NormShape { Rows = n, Features = features, Affine = Present(gamma) ? 1 : 0, Accumulate = accumulate ? 1 : 0 };
        if (Present(dx))
        {
            Count(1);
            _layerNormBackward(Reduction(n), dy, normalized, OrUnused(gamma), inverseStd, dx, shape, Scalars(T.Zero, features, T.Zero, 1.0));
        }
        if (Present(gamma))
        {
            Count(1);
            _scaleShiftGradients(Reduction(features), dy, normalized, dgamma, dbeta, shape);
        }
    }

    /// <summary>y = max(x, 0). One launch.</summary>
    public void ReluForward(ArrayView<T> x, ArrayView<T> y)
    {
        Count(1);
        _reluForward(x.IntLength, x, y);
    }

    /// <summary>dx = dy where y &gt; 0. One launch.</summary>
    public void ReluBackward(ArrayView<T> y, ArrayView<T> dy, ArrayView<T> dx)
    {
        Count(1);
        _reluBackward(y.IntLength, y, dy, dx);
    }

    /// <summary>y = x * scaledMask: dropout's forward (x the input) and backward (x the output gradient). One launch.</summary>
    public void MaskMultiply(ArrayView<T> x, ArrayView<T> scaledMask, ArrayView<T> y)
    {
        Count(1);
        _maskMultiply.Value(x.IntLength, x, scaledMask, y);
    }

    /// <summary>y = f(x) for an activation other than relu. One launch.</summary>
    public void ActivationForward(ArrayView<T> x, ArrayView<T> y, ActivationConstants<T> c)
    {
        Count(1);
        _activationForward.Value(x.IntLength, x, y, c);
    }

    /// <summary>dx = dy f'(x) for an activation other than relu, from its input x. One launch.</summary>
    public void ActivationBackward(ArrayView<T> x, ArrayView<T> dy, ArrayView<T> dx, ActivationConstants<T> c)
    {
        Count(1);
        _activationBackward.Value(x.IntLength, x, dy, dx, c);
    }

    /// <summary>
    /// Mean softmax cross-entropy and accuracy into <paramref name="scalars"/> [2]; d(loss)/d(logits) into
    /// <paramref name="dlogits"/> when present. One launch: one group of lanes x lanes threads (256 with CUDA's 16
    /// lanes; one thread, so a sum over the rows in order, with one lane).
    /// </summary>
    public void SoftmaxCrossEntropy(ArrayView<T> logits, ArrayView<int> labels, ArrayView<T> dlogits, ArrayView<T> scalars, int n, int classes)
    {
        var shape = new LossShape { Rows = n, Classes = classes, WriteGradient = Present(dlogits) ? 1 : 0 };
        Count(1);
        _loss(new KernelConfig(new Index1D(1), new Index1D(ReductionLanes * ReductionLanes)), logits, labels, OrUnused(dlogits), scalars, shape,
            T.CreateChecked(n));
    }

    /// <summary>
    /// Mean squared error or binary cross-entropy from logits (<paramref name="function"/>, <see cref="ElementWiseLoss"/>)
    /// over all n x width elements and, when <paramref name="labels"/> is present, the accuracy against them, into
    /// <paramref name="scalars"/> [2]; d(loss)/d(outputs) into <paramref name="doutputs"/> when present. One launch.
    /// </summary>
    public void ElementWise(int function, ArrayView<T> outputs, ArrayView<T> targets, ArrayView<int> labels, ArrayView<T> doutputs, ArrayView<T> scalars,
        int n, int width)
    {
        var shape = new LossShape { Rows = n, Classes = width, WriteGradient = Present(doutputs) ? 1 : 0, Function = function, CountCorrect = labels.IsValid && labels.Length > 0 ? 1 : 0 };
        Count(1);
        _elementWiseLoss.Value(new KernelConfig(new Index1D(1), new Index1D(ReductionLanes * ReductionLanes)), outputs, targets,
            labels.IsValid && labels.Length > 0 ? labels : _unusedLabels.View, OrUnused(doutputs), scalars, shape,
            new LossScalars<T> { Rows = T.CreateChecked(n), Count = T.CreateChecked((long)n * width) });
    }

    /// <summary>Softmax cross-entropy with label smoothing <paramref name="smoothing"/> and accuracy into <paramref name="scalars"/> [2]; one launch.</summary>
    public void SmoothedSoftmaxCrossEntropy(ArrayView<T> logits, ArrayView<int> labels, ArrayView<T> dlogits, ArrayView<T> scalars, int n, int classes, T smoothing)
    {
        var shape = new LossShape { Rows = n, Classes = classes, WriteGradient = Present(dlogits) ? 1 : 0 };
        Count(1);
        // As the reference forms them, in T: e / C, then 1 - e + e / C.
        T uniform = smoothing / T.CreateChecked(classes);
        _smoothedLoss.Value(new KernelConfig(new Index1D(1), new Index1D(ReductionLanes * ReductionLanes)), logits, labels, OrUnused(dlogits), scalars, shape,
            new LossScalars<T> { Rows = T.CreateChecked(n), Uniform = uniform, OnTarget = T.One - smoothing + uniform });
    }

    /// <summary>SGD with momentum over every element of the flat buffers. One launch.</summary>
    public void SgdUpdate(ArrayView<T> parameters, ArrayView<T> velocity, ArrayView<T> gradients, T lr, T momentum) =>
        SgdUpdate(parameters, velocity, gradients, lr, momentum, momentum, nesterov: false);

    /// <summary>
    /// SGD with momentum in terms of the canonical buffer b over every element of the flat buffers: b = decay b + g, then
    /// p -= lr b, or with Nesterov p -= lr (g + mu b) (decay: <see cref="Specs.SgdSpec.VelocityDecayAt"/>). One launch.
    /// </summary>
    public void SgdUpdate(ArrayView<T> parameters, ArrayView<T> velocity, ArrayView<T> gradients, T lr, T decay, T momentum, bool nesterov)
    {
        var c = new OptimizerScalars<T> { Rule = Optimizer.Sgd, LearningRate = lr, Beta1 = decay, Momentum = momentum, Nesterov = nesterov ? 1 : 0 };
        Count(1);
        _optimizer(parameters.IntLength, parameters, gradients, velocity, _unused.View, c);
    }

    /// <summary>Adam (either epsilon form) with the constants of its update (<see cref="Specs.AdamSpec.ConstantsAt"/>) over every element of the flat buffers. One launch.</summary>
    public void AdamUpdate(ArrayView<T> parameters, ArrayView<T> m, ArrayView<T> v, ArrayView<T> gradients, T lr, Specs.AdamConstants constants, T eps,
        Specs.EpsilonForm form)
    {
        ArgumentNullException.ThrowIfNull(constants);
        // The constants of the update are formed once in float64 (AdamSpec.ConstantsAt) and rounded to T, as the reference does.
        T bc1 = T.CreateChecked(constants.Correction1), bc2 = T.CreateChecked(constants.Correction2);
        var c = new OptimizerScalars<T>
        {
            Rule = form == Specs.EpsilonForm.SqrtVHat ? Optimizer.AdamSqrtVHat : Optimizer.AdamEpsilonHat,
            LearningRate = lr, Beta1 = T.CreateChecked(constants.Decay1), OneMinusBeta1 = T.CreateChecked(constants.Scale1),
            Beta2 = T.CreateChecked(constants.Decay2), OneMinusBeta2 = T.CreateChecked(constants.Scale2), Eps = eps,
            BiasCorrection1 = bc1, BiasCorrection2 = bc2, StepSize = lr * T.Sqrt(bc2) / bc1,
        };
        Count(1);
        _optimizer(parameters.IntLength, parameters, gradients, m, v, c);
    }

    /// <summary>
    /// RMSprop or Adagrad over every element of the flat buffers (<see cref="Optimizer.AdaptiveUpdate"/>): the mean square
    /// or accumulator in <paramref name="first"/>, RMSprop's momentum buffer in <paramref name="second"/> and mean gradient
    /// in <paramref name="third"/>. One launch.
    /// </summary>
    public void AdaptiveUpdate(ArrayView<T> parameters, ArrayView<T> gradients, ArrayView<T> first, ArrayView<T> second, ArrayView<T> third,
        Specs.OptimizerSpec spec)
    {
        var c = spec switch
        {
            Specs.RmspropSpec r => new AdaptiveScalars<T>
            {
                Rule = Optimizer.Rmsprop, Rho = T.CreateChecked(r.Rho), OneMinusRho = T.CreateChecked(1 - r.Rho), Eps = T.CreateChecked(r.Eps),
                Momentum = T.CreateChecked(r.Momentum), Inside = r.EpsilonPlacement == Specs.EpsilonPlacement.Inside ? 1 : 0,
                Centered = r.Centered ? 1 : 0, UseMomentum = r.Momentum > 0 ? 1 : 0,
            },
            Specs.AdagradSpec a => new AdaptiveScalars<T>
            {
                Rule = Optimizer.Adagrad, Eps = T.CreateChecked(a.Eps), Inside = a.EpsilonPlacement == Specs.EpsilonPlacement.Inside ? 1 : 0,
            },
            _ => throw new ArgumentException($"optimizer '{spec?.Type}' is not RMSprop or Adagrad", nameof(spec)),
        };
        c.LearningRate = T.CreateChecked(spec.LearningRate);
        Count(1);
        _adaptiveOptimizer.Value(parameters.IntLength, parameters, gradients, first, second, third, c);
    }

    /// <summary>Decoupled weight decay: p -= <paramref name="factor"/> p over <paramref name="parameters"/>. One launch.</summary>
    public void DecayShrink(ArrayView<T> parameters, T factor)
    {
        Count(1);
        _shrink.Value(parameters.IntLength, parameters, factor);
    }

    /// <summary>A weight decay gradient term: g += <paramref name="rate"/> p. One launch.</summary>
    public void DecayGradientTerm(ArrayView<T> gradients, ArrayView<T> parameters, T rate)
    {
        Count(1);
        _gradientTerm.Value(gradients.IntLength, gradients, parameters, rate);
    }

    /// <summary>
    /// The L2 loss term: <paramref name="scalars"/>[0] += coefficient * sum(p^2). One launch: one group of lanes x lanes
    /// threads, as <see cref="SoftmaxCrossEntropy"/>.
    /// </summary>
    public void DecayLossTerm(ArrayView<T> parameters, ArrayView<T> scalars, T coefficient)
    {
        Count(1);
        _lossTerm.Value(new KernelConfig(new Index1D(1), new Index1D(ReductionLanes * ReductionLanes)), parameters, scalars, coefficient);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _unused.Dispose();
        _unusedLabels.Dispose();
    }

    /// <summary>Whether a product with C of <paramref name="rows"/> x <paramref name="cols"/> runs <see cref="BlockedProduct"/>.</summary>
    public bool UsesBlockedProduct(int rows, int cols) =>
        (long)((rows + BlockedProduct.BlockRows - 1) / BlockedProduct.BlockRows) * ((cols + BlockedProduct.BlockCols - 1) / BlockedProduct.BlockCols)
        >= BlockedProductMinimumTiles;

    private void Product(ArrayView<T> a, ArrayView<T> b, ArrayView<T> c, ArrayView<T> bias, ArrayView<T> second, ArrayView<T> mask,
        ArrayView<T> rowSums, ProductShape shape)
    {
        int cols = shape.Cols + shape.OnesColumn;
        if (UsesBlockedProduct(shape.Rows, cols))
        {
            var blocks = new Index2D((cols + BlockedProduct.BlockCols - 1) / BlockedProduct.BlockCols, (shape.Rows + BlockedProduct.BlockRows - 1) / BlockedProduct.BlockRows);
            Count(1);
            _blockedProduct(new KernelConfig(blocks, new Index2D(BlockedProduct.Threads, BlockedProduct.Threads)), a, b, c, OrUnused(bias), OrUnused(second),
                OrUnused(mask), OrUnused(rowSums), shape);
            return;
        }
        var grid = new Index2D((cols + TiledProduct.Tile - 1) / TiledProduct.Tile, (shape.Rows + TiledProduct.Tile - 1) / TiledProduct.Tile);
        Count(1);
        _product(new KernelConfig(grid, new Index2D(TiledProduct.Tile, TiledProduct.Tile)), a, b, c, OrUnused(bias), OrUnused(second),
            OrUnused(mask), OrUnused(rowSums), shape);
    }

    private KernelConfig Reduction(int columns) =>
        new(new Index2D((columns + GroupReduction.Columns - 1) / GroupReduction.Columns, 1), new Index2D(GroupReduction.Columns, ReductionLanes));

    private static NormScalars<T> Scalars(T eps, int count, T momentum, double varianceCorrection) => new()
    {
        Eps = eps,
        Count = T.CreateChecked(count),
        InverseCount = T.One / T.CreateChecked(count),
        Momentum = momentum,
        OneMinusMomentum = T.One - momentum,
        VarianceCorrection = T.CreateChecked(varianceCorrection),
    };

    private static bool Present(ArrayView<T> view) => view.IsValid && view.Length > 0;

    private ArrayView<T> OrUnused(ArrayView<T> view) => Present(view) ? view : _unused.View;

    private void Count(int launches) => Launches += launches;
}
