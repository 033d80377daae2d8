namespace Parity.Backends.Workers.Tests;

/// <summary>Paths into the repository (fixtures, broken workers), found by walking up from the test output.</summary>
internal static class TestPaths
{
    public static string RepositoryRoot { get; } = FindRoot();

    public static string Fixture(string name) => Path.Combine(RepositoryRoot, "fixtures", name);

    public static string Faulty(string name) => Path.Combine(RepositoryRoot, "tests", "Parity.Backends.Workers.Tests", "faulty", name);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Parity.sln"))) return dir.FullName;
        throw new InvalidOperationException("Parity.sln not found above " + AppContext.BaseDirectory);
    }
}
