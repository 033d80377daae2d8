namespace Parity.Harness;

/// <summary>Finds the repository's folders (fixtures/, reference-models/) from wherever the CLI runs.</summary>
public static class RepoPaths
{
    /// <summary>The repository root: the nearest folder above the CLI or the working directory holding Parity.sln.</summary>
    public static string Root { get; } = Find(AppContext.BaseDirectory) ?? Find(Directory.GetCurrentDirectory()) ?? Directory.GetCurrentDirectory();

    /// <summary>fixtures/.</summary>
    public static string Fixtures => Path.Combine(Root, "fixtures");

    /// <summary>reference-models/.</summary>
    public static string ReferenceModels => Path.Combine(Root, "reference-models");

    /// <summary>A fixture's path.</summary>
    public static string Fixture(string name) => Path.Combine(Fixtures, name);

    private static string? Find(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Parity.sln"))) return dir.FullName;
        return null;
    }
}
