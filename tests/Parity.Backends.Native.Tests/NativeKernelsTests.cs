using System.Numerics;
using ILGPU;
using ILGPU.Runtime;
using Parity.Backends.Native.Kernels;
using Parity.Backends.Reference;
using Parity.Specs;

namespace Parity.Backends.Native.Tests;

/// <summary>
/// Every kernel against <see cref="ReferenceOps"/> on the CPU accelerator, op by op. Shapes are not multiples of the
/// 16 x 16 tile or of the 16 reduction columns, so partial tiles and idle threads are exercised. Reduction lanes:
/// 1 (the CPU accelerator's sequential sums), 16 (CUDA's four-level trees) and 4.
/// </summary>
[TestFixture(typeof(float), 1)]
[TestFixture(typeof(float), 16)]
[TestFixture(typeof(double), 4)]
public sealed class NativeKernelsTests<T>(int lanes)
    where T : unmanaged, IFloatingPointIeee754<T>
{
    private const int Rows = 19, In = 21, Out = 18;
    private static readonly double Tolerance = typeof(T) == typeof(float) ? 2e-5 : 1e-12;

    private Context _context = null!;
    private Accelerator _accelerator = null!;
    private NativeKernels<T> _kernels = null!;
    private readonly List<MemoryBuffer> _buffers = [];

    [OneTimeSetUp]
    public void CreateDevice()
    {
        _context = NativeDevices.CreateContext();
        (var device, _) = NativeDevices.Choose(_context, "cpu");
        _accelerator = device.CreateAccelerator(_context);
        _kernels = new NativeKernels<T>(_accelerator, lanes);
    }

    [OneTimeTearDown]
    public void DisposeDevice()
    {
        _kernels.Dispose();
        _accelerator.Dispose();
        _context.Dispose();
    }

    [TearDown]
    public void FreeBuffers()
    {
        foreach (var b in _buffers) b.Dispose();
        _buffers.Clear();
    }

    [TestCase(true)]
    [TestCase(false)]
    public void Linear_forward_with_fused_relu_matches_the_reference(bool bias)
    {
        T[] x = Random(Rows * In, 1), w = Random(Out * In, 2), b = bias ? Random(Out, 3) : [];
        T[] expected = new T[Rows * Out], expectedRelu = new T[Rows * Out];
        ReferenceOps.LinearForward<T>(x, w, b, expected, Rows, In, Out);
        ReferenceOps.ReluForward<T>(expected, expectedRelu);

        var y = Empty(Rows * Out);
        var relu = Empty(Rows * Out);
        _kernels.LinearForward(Upload(x), Upload(w), bias ? Upload(b) : default, y, Rows, In, Out, relu);
        AssertClose(y, expected, "y");
        AssertClose(relu, expectedRelu, "relu(y)");
    }

    [Test]
    public void Linear_input_gradient_with_fused_relu_backward_matches_the_reference()
    {
        T[] x = Random(Rows * In, 4), w = Random(Out * In, 5), dy = Random(Rows * Out, 6);
        T[] reluOutput = new T[Rows * In];
        ReferenceOps.ReluForward<T>(x, reluOutput);
        T[] dx = new T[Rows * In], dw = new T[Out * In], db = new T[Out], masked = new T[Rows * In];
        ReferenceOps.LinearBackward<T>(x, w, dy, dx, dw, db, Rows, In, Out);
        ReferenceOps.ReluBackward<T>(reluOutput, dx, masked);

        var actualDx = Empty(Rows * In);
        var actualMasked = Empty(Rows * In);
        _kernels.LinearInputGradient(Upload(dy), Upload(w), actualDx, Rows, In, Out, Upload(reluOutput), actualMasked);
        AssertClose(actualDx, dx, "dx");
        AssertClose(actualMasked, masked, "relu-masked dx");
    }

    [Test]
    public void Linear_parameter_gradients_with_the_bias_column_match_the_reference_and_accumulate()
    {
        T[] x = Random(Rows * In, 7), w = Random(Out * In, 8), dy1 = Random(Rows * Out, 9), dy2 = Random(Rows * Out, 10);
        T[] dw1 = new T[Out * In], db1 = new T[Out], dw2 = new T[Out * In], db2 = new T[Out];
        ReferenceOps.LinearBackward<T>(x, w, dy1, [], dw1, db1, Rows, In, Out);
        ReferenceOps.LinearBackward<T>(x, w, dy2, [], dw2, db2, Rows, In, Out);

        var dw = Empty(Out * In);
        var db = Empty(Out);
        var xView = Upload(x);
        _kernels.LinearParameterGradients(xView, Upload(dy1), dw, db, Rows, In, Out, accumulate: false);
        AssertClose(dw, dw1, "dW");
        AssertClose(db, db1, "db");
        _kernels.LinearParameterGradients(xView, Upload(dy2), dw, db, Rows, In, Out, accumulate: true);
        AssertClose(dw, dw1.Zip(dw2, (a, c) => a + c).ToArray(), "dW summed over two calls");
        AssertClose(db, db1.Zip(db2, (a, c) => a + c).ToArray(), "db summed over two calls");
    }

    [TestCase(true, true)]
    [TestCase(false, true)]
    [TestCase(true, false)]
    public void Batchnorm_train_forward_and_running_update_match_the_reference(bool unbiased, bool affine)
    {
        const int f = Out;
        T eps = T.CreateChecked(1e-3), momentum = T.CreateChecked(0.1);
        T[] x = Random(Rows * f, 11, scale: 3), gamma = affine ? Random(f, 12) : [], beta = affine ? Random(f, 13) : [];
        T[] y = new T[Rows * f], mean = new T[f], variance = new T[f], xhat = new T[Rows * f], relu = new T[Rows * f];
        T[] runningMean = Random(f, 14), runningVariance = Random(f, 15, offset: 2);
        T[] expectedMean = (T[])runningMean.Clone(), expectedVariance = (T[])runningVariance.Clone();
        ReferenceOps.BatchNormForwardTrain<T>(x, gamma, beta, eps, y, mean, variance, xhat, Rows, f);
        ReferenceOps.ReluForward<T>(y, relu);
        ReferenceOps.UpdateRunningStatistics<T>(expectedMean, expectedVariance, mean, variance, momentum, unbiased, Rows);

        var views = new BatchNormTrainViews<T>
        {
            Input = Upload(x),
            Gamma = affine ? Upload(gamma) : default,
            Beta = affine ? Upload(beta) : default,
            Output = Empty(Rows * f),
            Normalized = Empty(Rows * f),
            ReluOutput = Empty(Rows * f),
            BatchMean = Empty(f),
            BatchVariance = Empty(f),
            RunningMean = Upload(runningMean),
            RunningVariance = Upload(runningVariance),
        };
        _kernels.BatchNormForwardTrain(views, Rows, f, eps, momentum, unbiased);
        AssertClose(views.Output, y, "y");
        AssertClose(views.Normalized, xhat, "xhat");
        AssertClose(views.ReluOutput, relu, "relu(y)");
        AssertClose(views.BatchMean, mean, "batch mean");
        AssertClose(views.BatchVariance, variance, "biased batch variance");
        AssertClose(views.RunningMean, expectedMean, "running mean");
        AssertClose(views.RunningVariance, expectedVariance, "running variance");
    }

    [TestCase(true)]
    [TestCase(false)]
    public void Batchnorm_backward_matches_the_reference(bool affine)
    {
        const int f = Out;
        T eps = T.CreateChecked(1e-5);
        T[] x = Random(Rows * f, 16, scale: 2), gamma = affine ? Random(f, 17) : [], beta = affine ? Random(f, 18) : [], dy = Random(Rows * f, 19);
        T[] y = new T[Rows * f], mean = new T[f], variance = new T[f], xhat = new T[Rows * f];
        ReferenceOps.BatchNormForwardTrain<T>(x, gamma, beta, eps, y, mean, variance, xhat, Rows, f);
        T[] dx = new T[Rows * f], dgamma = affine ? new T[f] : [], dbeta = affine ? new T[f] : [];
        ReferenceOps.BatchNormBackward<T>(dy, xhat, gamma, variance, eps, dx, dgamma, dbeta, Rows, f);

        var actualDx = Empty(Rows * f);
        var actualDgamma = affine ? Empty(f) : default;
        var actualDbeta = affine ? Empty(f) : default;
        _kernels.BatchNormBackward(Upload(dy), Upload(xhat), affine ? Upload(gamma) : default, Upload(variance), eps, actualDx, actualDgamma,
            actualDbeta, Rows, f, accumulate: false);
        AssertClose(actualDx, dx, "dx");
        if (!affine) return;
        AssertClose(actualDgamma, dgamma, "dgamma");
        AssertClose(actualDbeta, dbeta, "dbeta");
    }

    [Test]
    public void Batchnorm_eval_uses_the_running_statistics_like_the_reference()
    {
        const int f = Out;
        T eps = T.CreateChecked(1e-5);
        T[] x = Random(Rows * f, 20), gamma = Random(f, 21), beta = Random(f, 22), runningMean = Random(f, 23), runningVariance = Random(f, 24, offset: 2);
        T[] y = new T[Rows * f], relu = new T[Rows * f];
        ReferenceOps.BatchNormForwardEval<T>(x, gamma, beta, runningMean, runningVariance, eps, y, Rows, f);
        ReferenceOps.ReluForward<T>(y, relu);

        var actual = Empty(Rows * f);
        var actualRelu = Empty(Rows * f);
        var runningMeanView = Upload(runningMean);
        _kernels.BatchNormForwardEval(Upload(x), Upload(gamma), Upload(beta), runningMeanView, Upload(runningVariance), eps, actual, Rows, f, actualRelu);
        AssertClose(actual, y, "y");
        AssertClose(actualRelu, relu, "relu(y)");
        AssertClose(runningMeanView, runningMean, "running mean (unchanged)");
    }

    [Test]
    public void Layernorm_forward_and_backward_match_the_reference_and_accumulate()
    {
        const int f = Out;
        T eps = T.CreateChecked(1e-5);
        T[] x = Random(Rows * f, 25, scale: 2), gamma = Random(f, 26), beta = Random(f, 27), dy = Random(Rows * f, 28);
        T[] y = new T[Rows * f], xhat = new T[Rows * f], rstd = new T[Rows], relu = new T[Rows * f];
        ReferenceOps.LayerNormForward<T>(x, gamma, beta, eps, y, xhat, rstd, Rows, f);
        ReferenceOps.ReluForward<T>(y, relu);
        T[] dx = new T[Rows * f], dgamma = new T[f], dbeta = new T[f];
        ReferenceOps.LayerNormBackward<T>(dy, xhat, gamma, rstd, dx, dgamma, dbeta, Rows, f);

        var actualY = Empty(Rows * f);
        var actualXhat = Empty(Rows * f);
        var actualRstd = Empty(Rows);
        var actualRelu = Empty(Rows * f);
        var gammaView = Upload(gamma);
        _kernels.LayerNormForward(Upload(x), gammaView, Upload(beta), eps, actualY, actualXhat, actualRstd, Rows, f, actualRelu);
        AssertClose(actualY, y, "y");
        AssertClose(actualXhat, xhat, "xhat");
        AssertClose(actualRstd, rstd, "1/std");
        AssertClose(actualRelu, relu, "relu(y)");

        var actualDx = Empty(Rows * f);
        var actualDgamma = Empty(f);
        var actualDbeta = Empty(f);
        var dyView = Upload(dy);
        _kernels.LayerNormBackward(dyView, actualXhat, gammaView, actualRstd, actualDx, actualDgamma, actualDbeta, Rows, f, accumulate: false);
        AssertClose(actualDx, dx, "dx");
        AssertClose(actualDgamma, dgamma, "dgamma");
        AssertClose(actualDbeta, dbeta, "dbeta");
        _kernels.LayerNormBackward(dyView, actualXhat, gammaView, actualRstd, default, actualDgamma, actualDbeta, Rows, f, accumulate: true);
        AssertClose(actualDgamma, dgamma.Select(v => v + v).ToArray(), "dgamma summed over two calls");
        AssertClose(actualDbeta, dbeta.Select(v => v + v).ToArray(), "dbeta summed over two calls");
    }

    [Test]
    public void Relu_forward_and_backward_match_the_reference()
    {
        T[] x = Random(Rows * In, 29), dy = Random(Rows * In, 30);
        T[] y = new T[x.Length], dx = new T[x.Length];
        ReferenceOps.ReluForward<T>(x, y);
        ReferenceOps.ReluBackward<T>(y, dy, dx);
        var actualY = Empty(x.Length);
        var actualDx = Empty(x.Length);
        _kernels.ReluForward(Upload(x), actualY);
        _kernels.ReluBackward(actualY, Upload(dy), actualDx);
        AssertClose(actualY, y, "y");
        AssertClose(actualDx, dx, "dx");
    }

    [Test]
    public void Softmax_cross_entropy_loss_gradient_and_accuracy_match_the_reference()
    {
        const int classes = 5, n = 37; // more rows than the group has threads: rows are strided
        T[] logits = Random(n * classes, 31, scale: 4);
        var random = new Random(32);
        int[] labels = Enumerable.Range(0, n).Select(_ => random.Next(classes)).ToArray();
        T[] dlogits = new T[n * classes];
        T loss = ReferenceOps.SoftmaxCrossEntropy<T>(logits, labels, dlogits, n, classes);
        int correct = Enumerable.Range(0, n).Count(i =>
            Enumerable.Range(0, classes).Aggregate(0, (best, k) => logits[i * classes + k] > logits[i * classes + best] ? k : best) == labels[i]);

        var buffer = _accelerator.Allocate1D(labels);
        _buffers.Add(buffer);
        var actualGradient = Empty(n * classes);
        var scalars = Empty(2);
        var logitsView = Upload(logits);
        _kernels.SoftmaxCrossEntropy(logitsView, buffer.View, actualGradient, scalars, n, classes);
        AssertClose(actualGradient, dlogits, "dlogits");
        AssertClose(scalars, [loss, T.CreateChecked(correct) / T.CreateChecked(n)], "[loss, accuracy]");

        var evalScalars = Empty(2);
        _kernels.SoftmaxCrossEntropy(logitsView, buffer.View, default, evalScalars, n, classes);
        AssertClose(evalScalars, [loss, T.CreateChecked(correct) / T.CreateChecked(n)], "[loss, accuracy] without a gradient");
    }

    [Test]
    public void Sgd_with_momentum_matches_the_reference_over_two_steps()
    {
        T[] parameters = Random(40, 33), velocity = new T[40], g1 = Random(40, 34), g2 = Random(40, 35);
        T lr = T.CreateChecked(0.05), momentum = T.CreateChecked(0.9);
        var p = Upload(parameters);
        var v = Upload(velocity);
        ReferenceOps.SgdUpdate<T>(parameters, velocity, g1, lr, momentum);
        ReferenceOps.SgdUpdate<T>(parameters, velocity, g2, lr, momentum);
        _kernels.SgdUpdate(p, v, Upload(g1), lr, momentum);
        _kernels.SgdUpdate(p, v, Upload(g2), lr, momentum);
        AssertClose(p, parameters, "parameters");
        AssertClose(v, velocity, "velocity");
    }

    [TestCase(EpsilonForm.SqrtVHat)]
    [TestCase(EpsilonForm.EpsilonHat)]
    public void Adam_matches_the_reference_over_three_steps(EpsilonForm form)
    {
        T[] parameters = Random(40, 36), m = new T[40], v = new T[40];
        T lr = T.CreateChecked(0.01), eps = T.CreateChecked(1e-7);
        var pView = Upload(parameters);
        var mView = Upload(m);
        var vView = Upload(v);
        for (int t = 1; t <= 3; t++)
        {
            T[] g = Random(40, 36 + t, scale: 0.1);
            var constants = new AdamSpec(0.01, 0.9, 0.999, 1e-7, form).ConstantsAt(t);
            ReferenceOps.AdamUpdate<T>(parameters, m, v, g, lr, AdamConstants<T>.From(constants), eps, form);
            _kernels.AdamUpdate(pView, mView, vView, Upload(g), lr, constants, eps, form);
        }
        AssertClose(pView, parameters, "parameters");
        AssertClose(mView, m, "m");
        AssertClose(vView, v, "v");
    }

    [Test]
    public void The_epsilon_forms_give_different_updates()
    {
        // Guards the form switch itself: with eps comparable to sqrt(v), the two forms must not coincide.
        T[] g = [T.CreateChecked(1e-4)];
        var forms = new[] { EpsilonForm.SqrtVHat, EpsilonForm.EpsilonHat }.Select(form =>
        {
            var p = Upload([T.One]);
            _kernels.AdamUpdate(p, Empty(1), Empty(1), Upload(g), T.CreateChecked(0.1), new AdamSpec(0.1, 0.9, 0.999, 1e-4, form).ConstantsAt(1),
                T.CreateChecked(1e-4), form);
            return double.CreateChecked(p.GetAsArray()[0]);
        }).ToArray();
        Assert.That(forms[0], Is.Not.EqualTo(forms[1]).Within(1e-6));
    }

    private ArrayView<T> Upload(T[] values)
    {
        var buffer = _accelerator.Allocate1D(values);
        _buffers.Add(buffer);
        return buffer.View;
    }

    private ArrayView<T> Empty(int length)
    {
        var buffer = _accelerator.Allocate1D<T>(length);
        buffer.MemSetToZero();
        _buffers.Add(buffer);
        return buffer.View;
    }

    private static T[] Random(int length, int seed, double scale = 1, double offset = 0)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => T.CreateChecked(offset + scale * (2 * random.NextDouble() - 1))).ToArray();
    }

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
