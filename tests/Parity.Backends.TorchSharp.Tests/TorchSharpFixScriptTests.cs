using System.Diagnostics;

namespace Parity.Backends.TorchSharp.Tests;

/// <summary>scripts/torchsharp-fix on copies of the stock libLibTorchSharp.so from the NuGet cache.</summary>
[TestFixture]
public sealed class TorchSharpFixScriptTests
{
    private string _output = "";

    [SetUp]
    public void CopyTheStockLibrary()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the fix is for Linux");
        string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p
            ? p : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string stock = Path.Combine(packages, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (!File.Exists(stock)) Assert.Ignore($"no stock library at {stock}");
        _output = Directory.CreateTempSubdirectory("parity-torchsharp-fix-").FullName;
        Directory.CreateDirectory(Path.Combine(_output, "native"));
        File.Copy(stock, Library);
    }

    [TearDown]
    public void TearDown()
    {
        if (_output.Length > 0 && Directory.Exists(_output)) Directory.Delete(_output, recursive: true);
    }

    private string Library => Path.Combine(_output, "native", "libLibTorchSharp.so");

    [Test]
    public void ItDoesNothingWhereLibstdcxxHasTheNewVersion()
    {
        string fakeLibstdcxx = Path.Combine(_output, "libstdc++.so.6");
        File.WriteAllText(fakeLibstdcxx, "GLIBCXX_3.4.30\0GLIBCXX_3.4.32\0");
        byte[] before = File.ReadAllBytes(Library);
        var (code, output) = RunFix(("TORCHSHARP_FIX_LIBSTDCXX", fakeLibstdcxx));
        Assert.That(code, Is.EqualTo(0), output);
        Assert.That(File.ReadAllBytes(Library), Is.EqualTo(before));
        Assert.That(File.Exists(Path.Combine(_output, "native", "libParityGlibcxxShim.so")), Is.False);
    }

    [Test]
    public void ItPatchesTheCopyOnceAndIsIdempotent()
    {
        string oldLibstdcxx = Path.Combine(_output, "libstdc++.so.6");
        File.WriteAllText(oldLibstdcxx, "GLIBCXX_3.4.30\0");
        var (code, output) = RunFix(("TORCHSHARP_FIX_LIBSTDCXX", oldLibstdcxx));
        Assert.That(code, Is.EqualTo(0), output);
        byte[] patched = File.ReadAllBytes(Library);

        var (readelfCode, versions) = Run("readelf", $"-V -d \"{Library}\"");
        Assert.That(readelfCode, Is.EqualTo(0), versions);
        Assert.That(versions, Does.Match(@"Name: GLIBCXX_3\.4\.32\s+Flags: WEAK"));
        Assert.That(versions, Does.Contain("Shared library: [libParityGlibcxxShim.so]"));
        Assert.That(versions, Does.Contain("Library runpath: [$ORIGIN]"));
        Assert.That(File.Exists(Path.Combine(_output, "native", "libParityGlibcxxShim.so")), Is.True);

        var (again, secondOutput) = RunFix(("TORCHSHARP_FIX_LIBSTDCXX", oldLibstdcxx));
        Assert.That(again, Is.EqualTo(0), secondOutput);
        Assert.That(File.ReadAllBytes(Library), Is.EqualTo(patched), "a second run changes nothing");
    }

    [Test]
    public void AMissingOutputDirectoryIsAClearError()
    {
        Directory.Delete(_output, recursive: true);
        var (code, output) = RunFix();
        Assert.That(code, Is.Not.EqualTo(0));
        Assert.That(output, Does.Contain("does not exist"));
    }

    private (int Code, string Output) RunFix(params (string Name, string Value)[] environment) =>
        Run("bash", $"\"{Path.Combine(TestScenarios.RepositoryRoot, "scripts", "torchsharp-fix")}\" \"{_output}\"", environment);

    private static (int Code, string Output) Run(string program, string arguments, params (string Name, string Value)[] environment)
    {
        var start = new ProcessStartInfo(program, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in environment) start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr);
    }
}
