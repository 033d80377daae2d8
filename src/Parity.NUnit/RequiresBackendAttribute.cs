using Parity.Backends;
using NUnit.Framework;
using NUnit.Framework.Interfaces;
using NUnit.Framework.Internal;

namespace Parity.NUnit;

/// <summary>
/// Skips a test (or fixture), with the backend's own reason, when the named backend cannot run on this machine: not in
/// this build, or <see cref="IBackend.Describe"/> says unavailable (no libtorch, no node, no CUDA). Decided when NUnit
/// loads the test, so one build serves every machine. The test then starts and ignores itself, writing the reason to the
/// test's error output, so the reason shows in the normal console output of <c>dotnet test</c> and not only with a
/// detailed logger. A backend named in <c>PARITY_REQUIRE_BACKENDS</c> (comma-separated, or <c>all</c>) that cannot run
/// makes the test fail instead, so a CI suite cannot go green while skipping what it is there to run.
/// </summary>
/// <example><code>[Test, RequiresBackend("torchsharp")] public void TorchSharp_agrees() =&gt; ParityAssert.Agree(spec, "torchsharp");</code></example>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Class | AttributeTargets.Assembly, AllowMultiple = true, Inherited = true)]
public sealed class RequiresBackendAttribute : NUnitAttribute, IApplyToTest, ITestAction
{
    /// <summary>The environment variable naming the backends that must run (comma-separated, or <c>all</c>): one of them unavailable fails the test.</summary>
    public const string RequireVariable = "PARITY_REQUIRE_BACKENDS";

    /// <summary>Requires <paramref name="backend"/> (a name from <c>parity backends</c>, e.g. <c>torchsharp</c>).</summary>
    public RequiresBackendAttribute(string backend)
    {
        Backend = backend;
    }

    /// <summary>The backend name.</summary>
    public string Backend { get; }

    /// <inheritdoc />
    public ActionTargets Targets => ActionTargets.Default;

    // Where the load-time decision waits for the test to start (one key per backend: a test may require several).
    private string ReasonKey => $"Parity.RequiresBackend.Unavailable:{Backend}";

    /// <inheritdoc />
    public void ApplyToTest(Test test)
    {
        ArgumentNullException.ThrowIfNull(test);
        if (test.RunState == RunState.NotRunnable) return;
        if (UnavailableReason(Backend, ParityBackends.Default()) is not { } reason) return;
        if (IsRequired(Backend, Environment.GetEnvironmentVariable(RequireVariable)))
        {
            test.RunState = RunState.NotRunnable;
            test.Properties.Set(PropertyNames.SkipReason, $"{reason}; {RequireVariable} requires it, so this fails instead of being skipped");
            return;
        }
        test.Properties.Set(ReasonKey, reason);
    }

    /// <inheritdoc />
    public void BeforeTest(ITest test)
    {
        ArgumentNullException.ThrowIfNull(test);
        if (test.Properties.Get(ReasonKey) is not string reason) return;
        // The error stream reaches the console as a warning at the default verbosity; a skip reason alone does not.
        TestContext.Error.WriteLine($"{test.FullName} skipped: {reason} (set {RequireVariable}={Backend.Split('@')[0]} to fail instead)");
        Assert.Ignore(reason);
    }

    /// <inheritdoc />
    public void AfterTest(ITest test)
    {
    }

    /// <summary>True when <paramref name="required"/> (the value of <see cref="RequireVariable"/>) names <paramref name="backend"/> or says <c>all</c>.</summary>
    public static bool IsRequired(string backend, string? required)
    {
        ArgumentNullException.ThrowIfNull(backend);
        string name = backend.Split('@')[0];
        return (required ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Any(r => r.Equals("all", StringComparison.OrdinalIgnoreCase) || r.Split('@')[0].Equals(name, StringComparison.Ordinal));
    }

    /// <summary>Why <paramref name="backend"/> cannot run here, or null when it can.</summary>
    public static string? UnavailableReason(string backend, BackendRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(registry);
        string name = backend.Split('@')[0];
        if (!registry.Contains(name))
            return $"backend '{name}' is not part of this build (known: {string.Join(", ", registry.Names)})";
        try
        {
            var description = registry.Create(name).Describe();
            return description.Available ? null : $"backend '{name}' is unavailable: {description.Reason}";
        }
        catch (Exception e)
        {
            return $"backend '{name}' is unavailable: {e.GetType().Name}: {e.Message}";
        }
    }
}
