using NUnit.Framework.Interfaces;
using NUnit.Framework.Internal;
using Parity.NUnit;

namespace Parity.Cli.Tests;

/// <summary>[RequiresBackend] on a backend this build lacks: a skip that says why, or a failure when the backend is required.</summary>
[NonParallelizable]
public sealed class RequiresBackendTests
{
    private const string Missing = "no-such-framework";

    public sealed class Sample
    {
        public void Runs_on_the_missing_backend()
        {
        }
    }

    private static TestMethod LoadedWith(RequiresBackendAttribute attribute, string? required)
    {
        string? before = Environment.GetEnvironmentVariable(RequiresBackendAttribute.RequireVariable);
        try
        {
            Environment.SetEnvironmentVariable(RequiresBackendAttribute.RequireVariable, required);
            var test = new TestMethod(new MethodWrapper(typeof(Sample), nameof(Sample.Runs_on_the_missing_backend)));
            attribute.ApplyToTest(test);
            return test;
        }
        finally
        {
            Environment.SetEnvironmentVariable(RequiresBackendAttribute.RequireVariable, before);
        }
    }

    [Test]
    public void An_unavailable_backend_skips_the_test_with_its_reason_when_it_starts()
    {
        var attribute = new RequiresBackendAttribute(Missing);
        var test = LoadedWith(attribute, required: null);

        Assert.That(test.RunState, Is.EqualTo(RunState.Runnable), "it starts, so that the reason reaches the console");
        var skip = Assert.Throws<IgnoreException>(() => attribute.BeforeTest(test))!;
        Assert.That(skip.Message, Does.Contain($"backend '{Missing}' is not part of this build"));
    }

    [TestCase(Missing)]
    [TestCase("torchsharp, no-such-framework")]
    [TestCase("all")]
    public void A_required_backend_that_is_unavailable_fails_the_test(string required)
    {
        var test = LoadedWith(new RequiresBackendAttribute(Missing), required);

        Assert.That(test.RunState, Is.EqualTo(RunState.NotRunnable));
        Assert.That(test.Properties.Get(PropertyNames.SkipReason), Does.Contain("is not part of this build").And.Contain("PARITY_REQUIRE_BACKENDS requires it"));
    }

    [Test]
    public void Requiring_other_backends_leaves_this_one_a_skip()
    {
        var test = LoadedWith(new RequiresBackendAttribute(Missing), "torchsharp,keras");

        Assert.That(test.RunState, Is.EqualTo(RunState.Runnable));
    }

    [Test]
    public void An_available_backend_runs_untouched()
    {
        var attribute = new RequiresBackendAttribute("reference");
        var test = LoadedWith(attribute, "all");

        Assert.That(test.RunState, Is.EqualTo(RunState.Runnable));
        Assert.DoesNotThrow(() => attribute.BeforeTest(test));
    }

    [TestCase("torchsharp@float64", "torchsharp", true)]
    [TestCase("torchsharp", " keras , torchsharp ", true)]
    [TestCase("torchsharp", "torch", false)]
    [TestCase("torchsharp", null, false)]
    [TestCase("keras", "ALL", true)]
    public void The_setting_names_backends_by_name_without_dtype(string backend, string? setting, bool required) =>
        Assert.That(RequiresBackendAttribute.IsRequired(backend, setting), Is.EqualTo(required));
}
