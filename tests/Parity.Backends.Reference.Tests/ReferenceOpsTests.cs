using Parity.Models;
using Parity.Randomness;
using Parity.Specs;

namespace Parity.Backends.Reference.Tests;

public class ReferenceOpsTests
{
    private static double[] Random(int count, ulong seed, double scale = 1, double shift = 0)
    {
        var rng = new ParityRandom(seed);
        var values = new double[count];
        for (int i = 0; i < count; i++) values[i] = shift + scale * rng.NextNormal();
        return values;
    }

    private static void AssertClose(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected, double tolerance = 1e-12)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length));
        for (int i = 0; i < actual.Length; i++)
            Assert.That(actual[i], Is.EqualTo(expected[i]).Within(tolerance * Math.Max(1, Math.Abs(expected[i]))), $"element {i}");
    }

    // erf at points on both sides of the switch from the series to the continued fraction (|x| = 3), from a libm erf.
    [TestCase(-4.5, -0.9999999998033839)]
    [TestCase(-3.0, -0.9999779095030014)]
    [TestCase(-2.9999, -0.9999778955735178)]
    [TestCase(-1.0, -0.8427007929497149)]
    [TestCase(-0.3, -0.3286267594591274)]
    [TestCase(0.0, 0.0)]
    [TestCase(1e-5, 1.1283791670579e-05)]
    [TestCase(0.5, 0.5204998778130465)]
    [TestCase(1.7, 0.9837904585907745)]
    [TestCase(2.5, 0.999593047982555)]
    [TestCase(3.5, 0.9999992569016276)]
    [TestCase(5.0, 0.9999999999984626)]
    [TestCase(6.5, 1.0)]
    public void ErfIsWithinTenUnitsInTheLastPlaceOfLibm(double x, double expected)
    {
        var c = ActivationConstants<double>.For(new GeluSpec("g", GeluApproximation.Exact));
        Assert.That(Activations.Erf(c, x), Is.EqualTo(expected).Within(2e-15 * Math.Max(1e-300, Math.Abs(expected))).Or.EqualTo(expected));
    }

    [Test]
    public void ActivationDerivativesMatchCentralDifferencesAwayFromTheKink()
    {
        ActivationSpec[] all = [new TanhSpec("a"), new SigmoidSpec("a"), new LeakyReluSpec("a", 0.2), new GeluSpec("a", GeluApproximation.Exact),
            new GeluSpec("a", GeluApproximation.Tanh), new SiluSpec("a"), new EluSpec("a", 0.7)];
        foreach (var act in all)
        {
            var c = ActivationConstants<double>.For(act);
            foreach (double x in new[] { -3.1, -0.7, -0.01, 0.02, 0.9, 2.4 })
            {
                const double h = 1e-6;
                double numeric = (Activations.Forward(c, x + h) - Activations.Forward(c, x - h)) / (2 * h);
                Assert.That(Activations.Derivative(c, x, x > 0), Is.EqualTo(numeric).Within(1e-8), $"{act.Type} {act.Function} at {x}");
            }
        }
        // Exact and tanh GELU at 0.8: x Phi(x) with a libm erf, and the tanh formula.
        Assert.That(Activations.Forward(ActivationConstants<double>.For(new GeluSpec("g", GeluApproximation.Exact)), 0.8), Is.EqualTo(0.6305156811332827).Within(2e-16));
        Assert.That(Activations.Forward(ActivationConstants<double>.For(new GeluSpec("g", GeluApproximation.Tanh)), 0.8), Is.EqualTo(0.6304316914364482).Within(2e-16));
    }

    [Test]
    public void LinearForwardComputesXTimesWTransposedPlusBias()
    {
        double[] x = [1, 2, 3, 4, 5, 6]; // [2, 3]
        double[] w = [1, 0, -1, 0.5, 0.5, 0.5]; // [2, 3]
        double[] b = [10, 20];
        var y = new double[4];
        ReferenceOps.LinearForward<double>(x, w, b, y, 2, 3, 2);
        Assert.That(y, Is.EqualTo(new double[] { 1 - 3 + 10, 3 + 20, 4 - 6 + 10, 7.5 + 20 }));

        ReferenceOps.LinearForward<double>(x, w, [], y, 2, 3, 2);
        Assert.That(y, Is.EqualTo(new double[] { -2, 3, -2, 7.5 }));
    }

    [Test]
    public void LinearBackwardMatchesNaiveLoops()
    {
        const int n = 5, inW = 7, outW = 4;
        var x = Random(n * inW, 1);
        var w = Random(outW * inW, 2);
        var dy = Random(n * outW, 3);
        var dx = new double[n * inW];
        var dw = new double[outW * inW];
        var db = new double[outW];
        dw.AsSpan().Fill(99); // overwritten, not accumulated
        ReferenceOps.LinearBackward<double>(x, w, dy, dx, dw, db, n, inW, outW);

        var dxExpected = new double[n * inW];
        var dwExpected = new double[outW * inW];
        var dbExpected = new double[outW];
        for (int i = 0; i < n; i++)
            for (int o = 0; o < outW; o++)
            {
                dbExpected[o] += dy[i * outW + o];
                for (int j = 0; j < inW; j++)
                {
                    dxExpected[i * inW + j] += dy[i * outW + o] * w[o * inW + j];
                    dwExpected[o * inW + j] += dy[i * outW + o] * x[i * inW + j];
                }
            }
        AssertClose(dx, dxExpected);
        AssertClose(dw, dwExpected);
        AssertClose(db, dbExpected);
    }

    [Test]
    public void LinearBackwardSkipsTheInputGradientAndBiasWhenTheirSpansAreEmpty()
    {
        var x = Random(6, 1);
        var w = Random(6, 2);
        var dy = Random(4, 3);
        var dw = new double[6];
        Assert.DoesNotThrow(() => ReferenceOps.LinearBackward<double>(x, w, dy, [], dw, [], 2, 3, 2));
        Assert.That(dw[0], Is.EqualTo(dy[0] * x[0] + dy[2] * x[3]).Within(1e-15));
    }

    [Test]
    public void LinearOpsGiveBitIdenticalResultsOnOneThreadAndOnAll()
    {
        const int n = 300, inW = 97, outW = 61;
        var x = Random(n * inW, 4).Select(v => (float)v).ToArray();
        var w = Random(outW * inW, 5).Select(v => (float)v).ToArray();
        var b = Random(outW, 6).Select(v => (float)v).ToArray();
        var dy = Random(n * outW, 7).Select(v => (float)v).ToArray();
        float[] Run(ParallelOptions parallel)
        {
            var y = new float[n * outW];
            var dx = new float[n * inW];
            var dw = new float[outW * inW];
            var db = new float[outW];
            ReferenceOps.LinearForward<float>(x, w, b, y, n, inW, outW, parallel);
            ReferenceOps.LinearBackward<float>(x, w, dy, dx, dw, db, n, inW, outW, parallel);
            return [.. y, .. dx, .. dw, .. db];
        }
        var single = Run(new ParallelOptions { MaxDegreeOfParallelism = 1 });
        var all = Run(new ParallelOptions());
        var again = Run(new ParallelOptions { MaxDegreeOfParallelism = 7 });
        Assert.That(all, Is.EqualTo(single).AsCollection);
        Assert.That(again, Is.EqualTo(single).AsCollection);
    }

    [TestCase(1, 1, 1)]
    [TestCase(5, 3, 17)]
    [TestCase(9, 37, 21)]
    [TestCase(130, 40, 300)]
    public void LinearOpsInFloat32EqualTheNaiveSequentialLoopBitForBit(int n, int inW, int outW)
    {
        // Each output element is one chain acc = acc + a*b over k in order, whatever tile or SIMD lane it lands in.
        var x = Random(n * inW, 31).Select(v => (float)v).ToArray();
        var w = Random(outW * inW, 32).Select(v => (float)v).ToArray();
        var b = Random(outW, 33).Select(v => (float)v).ToArray();
        var dy = Random(n * outW, 34).Select(v => (float)v).ToArray();
        var y = new float[n * outW];
        var dx = new float[n * inW];
        var dw = new float[outW * inW];
        ReferenceOps.LinearForward<float>(x, w, b, y, n, inW, outW);
        ReferenceOps.LinearBackward<float>(x, w, dy, dx, dw, [], n, inW, outW);
        for (int i = 0; i < n; i++)
            for (int o = 0; o < outW; o++)
            {
                float acc = 0;
                for (int k = 0; k < inW; k++) acc += x[i * inW + k] * w[o * inW + k];
                Assert.That(y[i * outW + o], Is.EqualTo(acc + b[o]), $"y[{i},{o}]");
            }
        for (int o = 0; o < outW; o++)
            for (int j = 0; j < inW; j++)
            {
                float acc = 0;
                for (int i = 0; i < n; i++) acc += dy[i * outW + o] * x[i * inW + j];
                Assert.That(dw[o * inW + j], Is.EqualTo(acc), $"dw[{o},{j}]");
            }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < inW; j++)
            {
                float acc = 0;
                for (int o = 0; o < outW; o++) acc += dy[i * outW + o] * w[o * inW + j];
                Assert.That(dx[i * inW + j], Is.EqualTo(acc), $"dx[{i},{j}]");
            }
    }

    [TestCase(1, 1, 1)]
    [TestCase(7, 17, 3)]
    [TestCase(13, 33, 50)]
    [TestCase(250, 100, 196)]
    [TestCase(100, 196, 250)]
    public void ThePackedProductEqualsTheScalarChainBitForBitOnOneThreadAndOnSeveral(int m, int n, int k)
    {
        // Row-major operands and both transposed reads the linear layers use (x W^T, dy^T x), in both precisions;
        // shapes that are not multiples of the 6-row, 2-vector tile leave partial tiles on both edges.
        Assert.Multiple(() =>
        {
            CompareWithScalarChain<float>(m, n, k);
            CompareWithScalarChain<double>(m, n, k);
        });
    }

    private static void CompareWithScalarChain<T>(int m, int n, int k)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var a = Random(m * k, 41).Select(T.CreateTruncating).ToArray();
        var b = Random(k * n, 42).Select(T.CreateTruncating).ToArray();
        var bias = Random(n, 43).Select(T.CreateTruncating).ToArray();
        (nint Row, nint Col)[] aLayouts = [(k, 1), (1, m)], bLayouts = [(n, 1), (1, k)];
        foreach (var (aRow, aCol) in aLayouts)
            foreach (var (bRow, bCol) in bLayouts)
            {
                var expected = new T[m * n];
                MatrixProduct.MultiplyScalar<T>(a, aRow, aCol, b, bRow, bCol, expected, n, bias, m, n, k);
                foreach (int threads in new[] { 1, 2, 7, -1 })
                {
                    var actual = new T[m * n];
                    MatrixProduct.Multiply<T>(a, aRow, aCol, b, bRow, bCol, actual, n, bias, m, n, k, new ParallelOptions { MaxDegreeOfParallelism = threads });
                    Assert.That(actual, Is.EqualTo(expected).AsCollection, $"{typeof(T).Name} A strides ({aRow}, {aCol}), B strides ({bRow}, {bCol}), {threads} threads");
                }
            }
    }

    [Test]
    public void TheFloat32VariantReallyRoundsInFloat32()
    {
        // 1 + 1e-8 is 1 in float32 but not in float64.
        var y32 = new float[1];
        ReferenceOps.LinearForward<float>([1f, 1e-8f], [1f, 1f], [], y32, 1, 2, 1);
        var y64 = new double[1];
        ReferenceOps.LinearForward<double>([1.0, 1e-8], [1.0, 1.0], [], y64, 1, 2, 1);
        Assert.That(y32[0], Is.EqualTo(1f));
        Assert.That(y64[0], Is.EqualTo(1.00000001));
    }

    [Test]
    public void BatchNormTrainForwardUsesBiasedBatchVarianceWithEpsInsideTheSquareRoot()
    {
        double[] x = [1, 10, 2, 20, 3, 30, 4, 40]; // [4, 2]
        double[] gamma = [2, 1], beta = [0.5, -1];
        var y = new double[8];
        var mean = new double[2];
        var variance = new double[2];
        var xhat = new double[8];
        const double eps = 1e-3;
        ReferenceOps.BatchNormForwardTrain<double>(x, gamma, beta, eps, y, mean, variance, xhat, 4, 2);
        Assert.That(mean, Is.EqualTo(new[] { 2.5, 25 }));
        Assert.That(variance, Is.EqualTo(new[] { 1.25, 125 }));
        double s0 = Math.Sqrt(1.25 + eps), s1 = Math.Sqrt(125 + eps);
        AssertClose(xhat, [-1.5 / s0, -15 / s1, -0.5 / s0, -5 / s1, 0.5 / s0, 5 / s1, 1.5 / s0, 15 / s1]);
        AssertClose(y, [2 * -1.5 / s0 + 0.5, -15 / s1 - 1, 2 * -0.5 / s0 + 0.5, -5 / s1 - 1, 2 * 0.5 / s0 + 0.5, 5 / s1 - 1, 2 * 1.5 / s0 + 0.5, 15 / s1 - 1]);

        ReferenceOps.BatchNormForwardTrain<double>(x, [], [], eps, y, mean, variance, xhat, 4, 2);
        AssertClose(y, xhat);
    }

    [Test]
    public void BatchNormBackwardMatchesTheStagedComputationalGraph()
    {
        const int n = 9, f = 5;
        const double eps = 1e-5;
        var x = Random(n * f, 11, scale: 5, shift: 12);
        var gamma = Random(f, 12);
        var beta = Random(f, 13);
        var dy = Random(n * f, 14);
        var y = new double[n * f];
        var mean = new double[f];
        var variance = new double[f];
        var xhat = new double[n * f];
        ReferenceOps.BatchNormForwardTrain<double>(x, gamma, beta, eps, y, mean, variance, xhat, n, f);
        var dx = new double[n * f];
        var dgamma = new double[f];
        var dbeta = new double[f];
        ReferenceOps.BatchNormBackward<double>(dy, xhat, gamma, variance, eps, dx, dgamma, dbeta, n, f);

        // cs231n batchnorm_backward (seed 003): the step-by-step chain rule through mu, v and sigma.
        for (int j = 0; j < f; j++)
        {
            double sigma = Math.Sqrt(variance[j] + eps);
            double dsigma = 0, dmu = 0, db = 0, dg = 0;
            for (int i = 0; i < n; i++)
            {
                double dxhat = dy[i * f + j] * gamma[j];
                dsigma += dxhat * (x[i * f + j] - mean[j]) * -1 / (sigma * sigma);
                dmu += -dxhat / sigma;
                db += dy[i * f + j];
                dg += dy[i * f + j] * xhat[i * f + j];
            }
            double dv = dsigma / (2 * sigma);
            double sumCentered = 0;
            for (int i = 0; i < n; i++) sumCentered += x[i * f + j] - mean[j];
            dmu += dv * -2 * sumCentered / n;
            for (int i = 0; i < n; i++)
            {
                double expected = dy[i * f + j] * gamma[j] / sigma + dv * 2 * (x[i * f + j] - mean[j]) / n + dmu / n;
                Assert.That(dx[i * f + j], Is.EqualTo(expected).Within(1e-11 * Math.Max(1, Math.Abs(expected))));
            }
            Assert.That(dgamma[j], Is.EqualTo(dg).Within(1e-12));
            Assert.That(dbeta[j], Is.EqualTo(db).Within(1e-12));
        }
    }

    [Test]
    public void BatchNormEvalNormalizesWithTheRunningStatistics()
    {
        double[] x = [3, -1, 5, 1]; // [2, 2]
        var y = new double[4];
        ReferenceOps.BatchNormForwardEval<double>(x, [2, 1], [1, 0], [1, 0], [4, 0.25], 0, y, 2, 2);
        Assert.That(y, Is.EqualTo(new double[] { 2 * (2 / 2.0) + 1, -1 / 0.5, 2 * (4 / 2.0) + 1, 1 / 0.5 }));
    }

    [Test]
    public void RunningStatisticsBlendTheNewBatchWithWeightMomentum()
    {
        double[] mean = [0, 0], variance = [1, 1];
        ReferenceOps.UpdateRunningStatistics<double>(mean, variance, [2, 4], [3, 6], 0.1, unbiased: false, 4);
        AssertClose(mean, [0.2, 0.4]);
        AssertClose(variance, [0.9 + 0.3, 0.9 + 0.6]);
    }

    [Test]
    public void UnbiasedRunningVarianceScalesTheBatchVarianceByNOverNMinusOne()
    {
        double[] mean = [0], biased = [1], unbiased = [1];
        double[] m2 = [0];
        ReferenceOps.UpdateRunningStatistics<double>(mean, biased, [2], [3], 0.1, unbiased: false, 4);
        ReferenceOps.UpdateRunningStatistics<double>(m2, unbiased, [2], [3], 0.1, unbiased: true, 4);
        Assert.That(biased[0], Is.EqualTo(0.9 + 0.1 * 3).Within(1e-15));
        Assert.That(unbiased[0], Is.EqualTo(0.9 + 0.1 * 3 * 4.0 / 3.0).Within(1e-15));
        Assert.That(m2[0], Is.EqualTo(mean[0]));
    }

    [Test]
    public void LayerNormForwardNormalizesEachSampleOverItsFeatures()
    {
        double[] x = [1, 2, 3, 10, 10, 40]; // [2, 3]
        var y = new double[6];
        var xhat = new double[6];
        var rstd = new double[2];
        ReferenceOps.LayerNormForward<double>(x, [1, 2, 3], [0, 1, 0], 0, y, xhat, rstd, 2, 3);
        double r0 = 1 / Math.Sqrt(2.0 / 3), r1 = 1 / Math.Sqrt(200.0);
        AssertClose(rstd, [r0, r1]);
        AssertClose(xhat, [-r0, 0, r0, -10 * r1, -10 * r1, 20 * r1]);
        AssertClose(y, [-r0, 1, 3 * r0, -10 * r1, -20 * r1 + 1, 60 * r1]);
    }

    [Test]
    public void LayerNormBackwardMatchesCentralDifferences()
    {
        const int n = 4, f = 6;
        const double eps = 1e-5, h = 1e-6;
        var x = Random(n * f, 21, scale: 3, shift: 1);
        var gamma = Random(f, 22);
        var beta = Random(f, 23);
        var dy = Random(n * f, 24);
        double Objective(double[] xs, double[] g, double[] b)
        {
            var y = new double[n * f];
            ReferenceOps.LayerNormForward<double>(xs, g, b, eps, y, new double[n * f], new double[n], n, f);
            double s = 0;
            for (int i = 0; i < y.Length; i++) s += y[i] * dy[i];
            return s;
        }
        var yOut = new double[n * f];
        var xhat = new double[n * f];
        var rstd = new double[n];
        ReferenceOps.LayerNormForward<double>(x, gamma, beta, eps, yOut, xhat, rstd, n, f);
        var dx = new double[n * f];
        var dgamma = new double[f];
        var dbeta = new double[f];
        ReferenceOps.LayerNormBackward<double>(dy, xhat, gamma, rstd, dx, dgamma, dbeta, n, f);

        void Check(double[] values, double[] analytic)
        {
            for (int k = 0; k < values.Length; k++)
            {
                double saved = values[k];
                values[k] = saved + h;
                double plus = Objective(x, gamma, beta);
                values[k] = saved - h;
                double minus = Objective(x, gamma, beta);
                values[k] = saved;
                Assert.That(GradientCheck.RelativeError(analytic[k], (plus - minus) / (2 * h)), Is.LessThan(1e-7), $"element {k}");
            }
        }
        Check(x, dx);
        Check(gamma, dgamma);
        Check(beta, dbeta);
    }

    [Test]
    public void ReluPassesPositiveValuesAndTheirGradientsOnly()
    {
        double[] x = [-2, 0, 3];
        var y = new double[3];
        ReferenceOps.ReluForward<double>(x, y);
        Assert.That(y, Is.EqualTo(new double[] { 0, 0, 3 }));
        var dx = new double[3];
        ReferenceOps.ReluBackward<double>(y, [5, 6, 7], dx);
        Assert.That(dx, Is.EqualTo(new double[] { 0, 0, 7 }));
    }

    [Test]
    public void ReluGivesPositiveZeroForNaNAndNegativeZeroInItsVectorLanesAsInItsScalarTail()
    {
        // 37 values: whole vectors and a tail in both precisions; NaN and -0 land in both.
        var x = Random(37, 51);
        x[3] = double.NaN; x[5] = -0.0; x[35] = double.NaN; x[36] = -0.0;
        var dy = Random(37, 52);
        var y = new double[37];
        var dx = new double[37];
        ReferenceOps.ReluForward<double>(x, y);
        ReferenceOps.ReluBackward<double>(y, dy, dx);
        var y32 = new float[37];
        ReferenceOps.ReluForward<float>(x.Select(v => (float)v).ToArray(), y32);
        for (int i = 0; i < x.Length; i++)
        {
            double expected = x[i] > 0 ? x[i] : 0.0;
            Assert.That(BitConverter.DoubleToInt64Bits(y[i]), Is.EqualTo(BitConverter.DoubleToInt64Bits(expected)), $"y[{i}]");
            Assert.That(BitConverter.SingleToInt32Bits(y32[i]), Is.EqualTo(BitConverter.SingleToInt32Bits((float)expected)), $"y32[{i}]");
            Assert.That(dx[i], Is.EqualTo(expected > 0 ? dy[i] : 0.0), $"dx[{i}]");
        }
    }

    [Test]
    public void SoftmaxCrossEntropyReturnsTheMeanLossAndScaledGradient()
    {
        double[] logits = [0, 0, 1000, 1000 + Math.Log(3)]; // [2, 2]; the second row overflows exp without the max shift
        var dlogits = new double[4];
        double loss = ReferenceOps.SoftmaxCrossEntropy<double>(logits, [0, 0], dlogits, 2, 2);
        // Row 0: p = (1/2, 1/2), loss ln 2. Row 1: p = (1/4, 3/4), loss ln 4.
        Assert.That(loss, Is.EqualTo((Math.Log(2) + Math.Log(4)) / 2).Within(1e-12));
        AssertClose(dlogits, [(0.5 - 1) / 2, 0.5 / 2, (0.25 - 1) / 2, 0.75 / 2]);
    }

    [Test]
    public void SoftmaxCrossEntropyRejectsALabelOutsideTheClasses()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => ReferenceOps.SoftmaxCrossEntropy<double>([0, 0], [2], new double[2], 1, 2));
        Assert.That(ex!.Message, Does.Contain("sample 0"));
    }

    [Test]
    public void SgdUpdateUsesThePyTorchMomentumForm()
    {
        double[] p = [1, 2], v = [0.5, -1], g = [0.1, 0.2];
        ReferenceOps.SgdUpdate<double>(p, v, g, 0.1, 0.9);
        AssertClose(v, [0.9 * 0.5 + 0.1, 0.9 * -1 + 0.2]);
        AssertClose(p, [1 - 0.1 * 0.55, 2 - 0.1 * -0.7]);
    }

    [Test]
    public void SgdNesterovStepsWithTheNewBuffer()
    {
        double[] p = [1], v = [0.5], g = [0.1];
        ReferenceOps.SgdUpdate<double>(p, v, g, 0.1, 0.9, 0.9, nesterov: true);
        AssertClose(v, [0.9 * 0.5 + 0.1]);
        AssertClose(p, [1 - 0.1 * (0.1 + 0.9 * 0.55)]);
    }

    [TestCase(false)]
    [TestCase(true)]
    public void TheKerasMomentumFormInTermsOfTheBufferIsKerasArithmeticUnderAChangingRate(bool nesterov)
    {
        // Keras: m = mu m - lr g; p += m (Nesterov: p += mu m - lr g); the canonical buffer is b = -m / lr.
        var sgd = new SgdSpec(0.1, 0.9) { MomentumForm = MomentumForm.Keras, Nesterov = nesterov, Schedule = new StepSchedule(1, 0.5) };
        double[][] grads = [[0.3, -0.2], [0.1, 0.4], [-0.5, 0.2]];
        double[] p = [1, 2], b = new double[2], kp = [1, 2], m = new double[2];
        for (int k = 0; k < grads.Length; k++)
        {
            double lr = sgd.LearningRateAt(k);
            ReferenceOps.SgdUpdate<double>(p, b, grads[k], lr, sgd.VelocityDecayAt(k), 0.9, nesterov);
            for (int i = 0; i < 2; i++)
            {
                m[i] = 0.9 * m[i] - lr * grads[k][i];
                kp[i] += nesterov ? 0.9 * m[i] - lr * grads[k][i] : m[i];
            }
            AssertClose(p, kp);
            AssertClose(b, [.. m.Select(x => -x / lr)]);
        }
    }

    [Test]
    public void GlobalNormClippingScalesEveryGradientByOneFactorAndPerTensorByItsOwn()
    {
        var grads = new Dictionary<string, double[]> { ["a"] = [3, 4], ["b"] = [0, 0.5] }; // norms 5 and 0.5, global sqrt(25.25)
        var global = new GradientClipping(ClipScope.GlobalNorm, 1, 1e-6).Apply(grads);
        double scale = 1 / (Math.Sqrt(25.25) + 1e-6);
        AssertClose(global["a"], [3 * scale, 4 * scale]);
        AssertClose(global["b"], [0, 0.5 * scale]);
        var perTensor = new GradientClipping(ClipScope.PerTensorNorm, 1, 0).Apply(grads);
        AssertClose(perTensor["a"], [0.6, 0.8]);
        Assert.That(perTensor["b"], Is.EqualTo(new[] { 0, 0.5 }), "a norm under the threshold leaves the gradient exactly as it is");
        var value = new GradientClipping(ClipScope.Value, 0.45, 0).Apply(grads);
        Assert.That(value["a"], Is.EqualTo(new[] { 0.45, 0.45 }));
        Assert.That(grads["a"], Is.EqualTo(new double[] { 3, 4 }), "the input (the traced gradients) is not changed");
    }

    [TestCase(EpsilonForm.SqrtVHat)]
    [TestCase(EpsilonForm.EpsilonHat)]
    public void AdamFollowsItsFormulaForThreeSteps(EpsilonForm form)
    {
        const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-3; // a large eps makes the two forms differ visibly
        double[] p = [0.5, -0.25], m = new double[2], v = new double[2];
        double[] pe = [0.5, -0.25], me = new double[2], ve = new double[2];
        double[][] grads = [[0.3, -0.01], [0.1, 0.02], [-0.2, 0.0]];
        for (int t = 1; t <= 3; t++)
        {
            ReferenceOps.AdamUpdate<double>(p, m, v, grads[t - 1], lr, AdamConstants<double>.From(new AdamSpec(lr, b1, b2, eps, form).ConstantsAt(t)), eps, form);
            for (int i = 0; i < 2; i++)
            {
                double g = grads[t - 1][i];
                me[i] = b1 * me[i] + (1 - b1) * g;
                ve[i] = b2 * ve[i] + (1 - b2) * g * g;
                pe[i] -= form == EpsilonForm.SqrtVHat
                    ? lr * (me[i] / (1 - Math.Pow(b1, t))) / (Math.Sqrt(ve[i] / (1 - Math.Pow(b2, t))) + eps)
                    : lr * Math.Sqrt(1 - Math.Pow(b2, t)) / (1 - Math.Pow(b1, t)) * me[i] / (Math.Sqrt(ve[i]) + eps);
            }
            AssertClose(p, pe, 1e-14);
            AssertClose(m, me, 1e-15);
            AssertClose(v, ve, 1e-15);
        }
    }

    [Test]
    public void TheTwoAdamEpsilonFormsDiffer()
    {
        double[] a = [1], b = [1];
        var constants = AdamConstants<double>.From(new AdamSpec(0.1, 0.9, 0.999, 1e-3, EpsilonForm.SqrtVHat).ConstantsAt(1));
        ReferenceOps.AdamUpdate<double>(a, new double[1], new double[1], [1e-3], 0.1, constants, 1e-3, EpsilonForm.SqrtVHat);
        ReferenceOps.AdamUpdate<double>(b, new double[1], new double[1], [1e-3], 0.1, constants, 1e-3, EpsilonForm.EpsilonHat);
        Assert.That(a[0], Is.Not.EqualTo(b[0]).Within(1e-6));
    }
    [TestCase(EpsilonPlacement.Outside, 0.0, false)]
    [TestCase(EpsilonPlacement.Inside, 1.0, false)]
    [TestCase(EpsilonPlacement.Outside, 0.0, true)]
    [TestCase(EpsilonPlacement.Inside, 1.0, true)]
    public void RmspropWithMomentumMatchesTheTensorFlowFormUnderAConstantLearningRate(EpsilonPlacement placement, double init, bool centered)
    {
        // The TF kernel form written out independently: mom = mu mom + lr g / d; p -= mom (the canonical form keeps b = mom / lr).
        const double lr = 0.01, rho = 0.9, mu = 0.5, eps = 1e-3;
        var spec = new RmspropSpec(lr, rho, eps, placement, init, mu, centered);
        double[] p = [0.5, -0.25], ms = [init, init], b = new double[2], mg = new double[2];
        double[] pe = [0.5, -0.25], mse = [init, init], mom = new double[2], mge = new double[2];
        double[][] grads = [[0.3, -0.01], [0.1, 0.02], [-0.2, 0.0]];
        foreach (var grad in grads)
        {
            ReferenceOps.RmspropUpdate<double>(p, grad, spec, ms, b, centered ? mg : []);
            for (int i = 0; i < 2; i++)
            {
                double g = grad[i];
                mse[i] = rho * mse[i] + (1 - rho) * g * g;
                mge[i] = rho * mge[i] + (1 - rho) * g;
                double s = centered ? mse[i] - mge[i] * mge[i] : mse[i];
                double d = placement == EpsilonPlacement.Inside ? Math.Sqrt(s + eps) : Math.Sqrt(s) + eps;
                mom[i] = mu * mom[i] + lr * g / d;
                pe[i] -= mom[i];
            }
            AssertClose(p, pe, 1e-14);
            AssertClose(ms, mse, 1e-15);
            AssertClose(b, [mom[0] / lr, mom[1] / lr], 1e-12);
            if (centered) AssertClose(mg, mge, 1e-15);
        }
    }

    [Test]
    public void RmspropWithoutMomentumStepsByTheGradientOverItsDenominator()
    {
        // Zero mean square, rho 0.9: the first step is lr g / sqrt(0.1 g^2) = lr sign(g) sqrt(10) when eps is negligible.
        double[] p = [1, 1], ms = new double[2];
        ReferenceOps.RmspropUpdate<double>(p, [0.5, -2], new RmspropSpec(0.01, 0.9, 0, EpsilonPlacement.Outside, 0, 0, false), ms, [], []);
        AssertClose(p, [1 - 0.01 * Math.Sqrt(10), 1 + 0.01 * Math.Sqrt(10)], 1e-14);
        AssertClose(ms, [0.025, 0.4], 1e-15);
    }

    [TestCase(EpsilonPlacement.Outside, 0.0, 1e-10)]
    [TestCase(EpsilonPlacement.Inside, 0.1, 1e-7)]
    [TestCase(EpsilonPlacement.Outside, 0.1, 0.0)]
    public void AdagradFollowsItsFormulaForThreeSteps(EpsilonPlacement placement, double init, double eps)
    {
        const double lr = 0.05;
        double[] p = [0.5, -0.25], acc = [init, init];
        double[] pe = [0.5, -0.25], acce = [init, init];
        double[][] grads = [[0.3, -0.01], [0.1, 0.02], [-0.2, 0.5]];
        foreach (var grad in grads)
        {
            ReferenceOps.AdagradUpdate<double>(p, grad, new AdagradSpec(lr, init, eps, placement), acc);
            for (int i = 0; i < 2; i++)
            {
                acce[i] += grad[i] * grad[i];
                pe[i] -= lr * grad[i] / (placement == EpsilonPlacement.Inside ? Math.Sqrt(acce[i] + eps) : Math.Sqrt(acce[i]) + eps);
            }
            AssertClose(p, pe, 1e-15);
            AssertClose(acc, acce, 1e-16);
        }
    }
}
