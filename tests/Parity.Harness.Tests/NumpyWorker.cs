using System.Diagnostics;
using Parity.Backends;

namespace Parity.Harness.Tests;

/// <summary>The framework-free numpy worker (workers/numpy-worker.py, protocol 2, optional injected bugs) as a backend.</summary>
internal static class NumpyWorker
{
    /// <summary>The backend name it is registered under.</summary>
    public const string Name = "np";

    private const string Python = "/usr/bin/python3";

    private static readonly string Script = Path.Combine(RepoPaths.Root, "tests", "Parity.Harness.Tests", "workers", "numpy-worker.py");

    /// <summary>The standard backends plus the worker, run with <paramref name="arguments"/> (e.g. <c>--bug weight-decay --from-step 6</c>).</summary>
    public static BackendRegistry Registry(string arguments = "") => StandardBackends.Create([$"{Name}={Python} {Script} {arguments}".TrimEnd()]);

    /// <summary>Ignores the calling test when the interpreter or numpy is missing.</summary>
    public static void Require()
    {
        if (!File.Exists(Python)) Assert.Ignore($"{Python} is missing: run scripts/setup (Debian package python3-numpy)");
        using var p = Process.Start(new ProcessStartInfo(Python, ["-c", "import numpy"]) { RedirectStandardError = true })!;
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) Assert.Ignore($"{Python} has no numpy: run scripts/setup (Debian package python3-numpy)");
    }
}
