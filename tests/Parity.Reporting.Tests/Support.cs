using Parity.Backends.Reference;
using Parity.Harness;
using Parity.Specs;

namespace Parity.Reporting.Tests;

/// <summary>Paths inside the repository, found from the test assembly's folder.</summary>
internal static class Repository
{
    private static readonly Lazy<string> RootPath = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Parity.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no Parity.sln above {AppContext.BaseDirectory}");
    });

    public static string Root => RootPath.Value;

    public static string Fixture(string fileName) => Path.Combine(Root, "fixtures", fileName);

    public static string Docs(string file) => Path.Combine(Root, "docs", file);
}

/// <summary>A temporary directory removed when disposed.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory(string purpose = "reporting")
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"parity-{purpose}-tests-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is harmless; never fail a test over clean-up.
        }
    }
}

/// <summary>
/// One real run shared by the tests that read a report: fixtures/synthetic-mlp-bn.json on reference and reference-f32
/// through <see cref="RunSession"/>, into a temporary run directory (a few seconds, once per test session).
/// </summary>
internal static class RealRun
{
    public const string Fixture = "synthetic-mlp-bn.json";

    private static readonly Lazy<(string Directory, RunReport Report)> Run = new(() =>
    {
        string dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "parity-reporting-real-run-" + Guid.NewGuid().ToString("N")[..10]);
        string spec = Repository.Fixture(Fixture);
        var request = new RunRequest(SpecLoader.LoadFile(spec), spec, [ReferenceBackend.Float32Name], ReferenceBackend.Float64Name, dir);
        return (dir, RunSession.Execute(request, StandardBackends.Create()));
    });

    public static string Directory => Run.Value.Directory;

    public static RunReport Report => Run.Value.Report;

    public static string File(string name) => System.IO.Path.Combine(Directory, name);

    /// <summary>Removes the run directory when a test created it.</summary>
    public static void Remove()
    {
        if (!Run.IsValueCreated) return;
        try
        {
            System.IO.Directory.Delete(Run.Value.Directory, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is harmless.
        }
    }
}

[SetUpFixture]
public sealed class RealRunCleanup
{
    [OneTimeTearDown]
    public void RemoveRunDirectory() => RealRun.Remove();
}
