namespace Parity.Tests;

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

    public static string FixturesDirectory => Path.Combine(Root, "fixtures");

    public static string Docs(string file) => Path.Combine(Root, "docs", file);

    /// <summary>Every spec fixture, by file name (for TestCaseSource).</summary>
    public static IEnumerable<string> FixtureNames() =>
        Directory.GetFiles(FixturesDirectory, "*.json").Select(Path.GetFileName).Order(StringComparer.Ordinal)!;

    public static string Fixture(string fileName) => Path.Combine(FixturesDirectory, fileName);
}

/// <summary>A temporary directory removed when disposed.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "parity-core-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

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
