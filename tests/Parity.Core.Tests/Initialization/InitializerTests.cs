using Parity.Randomness;
using Parity.Specs;

namespace Parity.Initialization.Tests;

public sealed class InitializerTests
{
    private const int FanIn = 400, FanOut = 100;

    private static double[] Draw(string kind, double std = 0)
    {
        var values = new double[FanIn * FanOut];
        Initializers.Fill(new InitializerSpec(kind, std), values, FanIn, FanOut, ParityRandom.Derive(1, "init/test." + kind));
        return values;
    }

    private static (double Mean, double Std) Moments(double[] v)
    {
        double mean = v.Average();
        return (mean, Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / v.Length));
    }

    [Test]
    public void He_normal_is_untruncated_with_std_sqrt_two_over_fan_in()
    {
        var v = Draw("he_normal");
        double sigma = Math.Sqrt(2.0 / FanIn);
        var (mean, std) = Moments(v);
        // 40000 draws: std error of the std ~0.35%, of the mean sigma/200.
        Assert.That(std, Is.EqualTo(sigma).Within(2).Percent);
        Assert.That(mean, Is.EqualTo(0).Within(sigma / 40));
        Assert.That(v.Max(Math.Abs), Is.GreaterThan(3 * sigma), "no truncation: 3-sigma values occur");
    }

    [Test]
    public void He_normal_truncated_keeps_std_sqrt_two_over_fan_in_and_cuts_at_two_sigma()
    {
        var v = Draw("he_normal_truncated");
        double target = Math.Sqrt(2.0 / FanIn);
        double sigma = target / 0.87962566103423978; // Keras VarianceScaling: the pre-truncation sigma
        var (_, std) = Moments(v);
        Assert.That(std, Is.EqualTo(target).Within(2).Percent);
        Assert.That(v.Max(Math.Abs), Is.LessThanOrEqualTo(2 * sigma));
        Assert.That(v.Max(Math.Abs), Is.GreaterThan(1.95 * sigma), "the cut is at 2 sigma, not below");
    }

    [Test]
    public void Lecun_normal_has_std_sqrt_one_over_fan_in()
    {
        Assert.That(Moments(Draw("lecun_normal")).Std, Is.EqualTo(Math.Sqrt(1.0 / FanIn)).Within(2).Percent);
    }

    [Test]
    public void Normal_uses_the_given_std_as_cs231n_weight_scale()
    {
        Assert.That(Moments(Draw("normal", 0.05)).Std, Is.EqualTo(0.05).Within(2).Percent);
    }

    [Test]
    public void Glorot_uniform_fills_plus_minus_sqrt_six_over_fan_in_plus_fan_out()
    {
        var v = Draw("glorot_uniform");
        double bound = Math.Sqrt(6.0 / (FanIn + FanOut));
        Assert.That(v, Is.All.InRange(-bound, bound));
        Assert.That(v.Min(), Is.LessThan(-0.999 * bound));
        Assert.That(v.Max(), Is.GreaterThan(0.999 * bound));
        Assert.That(Moments(v).Std, Is.EqualTo(bound / Math.Sqrt(3)).Within(2).Percent);
    }

    [Test]
    public void Pytorch_default_fills_plus_minus_one_over_sqrt_fan_in_for_weights_and_biases()
    {
        var v = Draw("pytorch_default");
        double bound = 1.0 / Math.Sqrt(FanIn); // kaiming_uniform(a=sqrt 5): sqrt(6/((1+5) fan_in))
        Assert.That(v, Is.All.InRange(-bound, bound));
        Assert.That(v.Max(Math.Abs), Is.GreaterThan(0.999 * bound));
        var bias = new double[FanOut];
        Initializers.Fill(new InitializerSpec("pytorch_default"), bias, FanIn, FanOut, new ParityRandom(3));
        Assert.That(bias, Is.All.InRange(-bound, bound));
    }

    [Test]
    public void Zeros_and_ones_are_constant()
    {
        Assert.That(Draw("zeros"), Is.All.EqualTo(0));
        Assert.That(Draw("ones"), Is.All.EqualTo(1));
    }

    [Test]
    public void Every_documented_initializer_is_implemented()
    {
        foreach (string kind in InitializerSpec.Kinds)
            Assert.DoesNotThrow(() => Draw(kind, 0.1), kind);
        Assert.Throws<ArgumentException>(() => Draw("xavier"));
    }
}
