using System.Diagnostics;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace Parity.Packages.Tests;

/// <summary>
/// The packages as a user meets them: packed once from the Release outputs the solution build left (the README's
/// first command, given <c>--no-build</c> and a version of its own so that nothing meets an earlier pack in the NuGet
/// cache), then the README's commands in a new <c>dotnet new nunit</c> project and the tool in a temporary tool path.
/// The machine's NuGet cache serves every other package (no second 1.5 GB restore); what this run adds to it is
/// removed afterwards.
/// </summary>
[TestFixture, NonParallelizable]
public sealed partial class PackageTests
{
    private static readonly string[] ExpectedPackages =
    [
        "Parity.Core", "Parity.Comparison", "Parity.Diagnostics", "Parity.Reporting", "Parity.Harness", "Parity.Onnx",
        "Parity.Backends.Reference", "Parity.Backends.Workers", "Parity.Backends.OnnxRuntime", "Parity.NUnit",
        "Parity.Backends.TorchSharp", "Parity.Backends.Native", "Parity.Backends.PythonNet", "Parity.Cli",
    ];

    private string _root = "";
    private string _work = "";
    private string _feed = "";
    private string _version = "";
    private ReadmeSteps _steps = null!;

    [OneTimeSetUp]
    public void Pack_every_package_as_the_readme_says()
    {
        _root = FindRoot();
        _steps = ReadmeSteps.Read(Path.Combine(_root, "README.md"));
        _work = Directory.CreateTempSubdirectory("parity-packages-test-").FullName;
        _feed = Path.Combine(_work, "feed");
        _version = $"{BuiltVersion(_root)}{(BuiltVersion(_root).Contains('-', StringComparison.Ordinal) ? "." : "-")}pkgtest.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";

        string pack = _steps.Commands.FirstOrDefault(c => c.StartsWith("scripts/pack ", StringComparison.Ordinal))
            ?? throw new InvalidDataException($"README.md, '{ReadmeSteps.Heading}': no scripts/pack command");
        var result = Shell($"{Feed(pack)} --no-build --version {_version}", _root, TimeSpan.FromMinutes(5));
        Assert.That(result.ExitCode, Is.Zero, $"scripts/pack failed (the packages are packed from the Release build: run `dotnet build Parity.sln -c Release` first):\n{result.Tail}");
    }

    [OneTimeTearDown]
    public void Remove_what_this_run_added()
    {
        if (_work.Length > 0 && Directory.Exists(_work)) Directory.Delete(_work, recursive: true);
        // Restores and the tool install extracted this run's packages into the shared NuGet cache: only this version goes.
        string cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } set ? set
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        foreach (string id in ExpectedPackages)
        {
            string package = Path.Combine(cache, id.ToLowerInvariant());
            string entry = Path.Combine(package, _version.ToLowerInvariant());
            if (_version.Length > 0 && Directory.Exists(entry)) Directory.Delete(entry, recursive: true);
            if (Directory.Exists(package) && !Directory.EnumerateFileSystemEntries(package).Any()) Directory.Delete(package);
        }
    }

    [Test]
    public void Every_package_is_packed_and_the_test_library_brings_no_libtorch()
    {
        var packed = Directory.GetFiles(_feed, "*.nupkg").Select(Path.GetFileName).ToList();
        foreach (string id in ExpectedPackages)
            Assert.That(packed, Does.Contain($"{id}.{_version}.nupkg"), $"{id} is not packed");

        var closure = DependencyClosure("Parity.NUnit");
        Assert.That(closure, Does.Contain("Parity.Harness").And.Contain("Parity.Backends.Workers").And.Contain("Parity.Backends.OnnxRuntime"));
        Assert.That(closure, Has.None.StartsWith("TorchSharp").And.None.StartsWith("libtorch").And.None.EqualTo("ILGPU").And.None.EqualTo("pythonnet"),
            "Parity.NUnit alone must not pull an in-process framework");
        Assert.That(DependencyClosure("Parity.Backends.TorchSharp"), Does.Contain("TorchSharp-cpu"));
    }

    [Test]
    public void The_readme_steps_give_a_new_nunit_project_a_passing_torchsharp_test()
    {
        string consumer = Path.Combine(_work, "consumer");
        Directory.CreateDirectory(consumer);
        var script = new List<string>();
        foreach (string command in _steps.Commands.Where(c => !c.StartsWith("scripts/pack ", StringComparison.Ordinal)))
        {
            if (command.StartsWith("# write ", StringComparison.Ordinal))
                script.Add($"cat > {_steps.TestFileName} <<'PARITY_README_TEST_FILE'\n{_steps.TestFile}PARITY_README_TEST_FILE");
            else if (!command.StartsWith('#'))
                script.Add(Feed(command));
        }

        try
        {
            var stopwatch = Stopwatch.StartNew();
            var result = Shell(string.Join("\n", script), consumer, TimeSpan.FromMinutes(8));
            TestContext.Out.WriteLine($"README steps after the pack: {stopwatch.Elapsed.TotalSeconds:F1} s");
            AssertTheTorchSharpTestPassed(result, consumer);
        }
        finally
        {
            Directory.Delete(consumer, recursive: true); // its output holds libtorch (about 530 MB): gone before the tool is installed
        }
    }

    private static void AssertTheTorchSharpTestPassed(ShellResult result, string consumer)
    {
        Assert.That(result.ExitCode, Is.Zero, $"the README's commands failed:\n{result.Tail}");
        Assert.That(result.Output, Does.Contain("Passed TorchSharp_training_agrees_with_the_float64_reference"),
            $"the TorchSharp test did not pass (PARITY_REQUIRE_BACKENDS=torchsharp turns a skip into a failure):\n{result.Tail}");

        // What the packages' build targets did to the user's output.
        string output = Directory.GetFiles(consumer, "MyModelTests.dll", SearchOption.AllDirectories)
            .Select(Path.GetDirectoryName).First(d => d!.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))!;
        Assert.That(Path.Combine(output, "workers", "torch-python", "worker.py"), Does.Exist, "the worker scripts are copied to the output");
        var platforms = Directory.GetDirectories(Path.Combine(output, "runtimes")).Select(Path.GetFileName).ToList();
        Assert.That(platforms, Is.SubsetOf(new[] { RuntimeInformation.RuntimeIdentifier, "linux", "unix" }), "only this machine's natives are copied");
    }

    [Test]
    public void The_tool_installs_and_runs()
    {
        string tools = Path.Combine(_work, "tools");
        string install = ToolInstallCommand().Replace("--global", $"--tool-path {tools}", StringComparison.Ordinal);
        var installed = Shell(Feed(install), _work, TimeSpan.FromMinutes(5));
        Assert.That(installed.ExitCode, Is.Zero, $"{install}:\n{installed.Tail}");

        string parity = Path.Combine(tools, "parity");
        var version = Shell($"{parity} --version", _work, TimeSpan.FromMinutes(1));
        Assert.That(version.ExitCode, Is.Zero, version.Tail);
        Assert.That(version.Output, Does.Contain(BuiltVersion(_root)));

        var backends = Shell($"{parity} backends", _work, TimeSpan.FromMinutes(2));
        Assert.That(backends.ExitCode, Is.Zero, backends.Tail);
        Assert.That(backends.Output, Does.Match(@"(?m)^\s*torchsharp\s+yes\b"), $"torchsharp runs from the tool's own natives (the fix was applied when it was packed):\n{backends.Tail}");
        Assert.That(backends.Output, Does.Match(@"(?m)^\s*reference\s+yes\b"), backends.Tail);
    }

    private string ToolInstallCommand()
    {
        string readme = File.ReadAllText(Path.Combine(_root, "README.md"));
        var match = ToolInstall().Match(readme);
        if (!match.Success) throw new InvalidDataException($"README.md: no 'dotnet tool install --global' command in '{ReadmeSteps.Heading}'");
        return match.Value.Trim();
    }

    /// <summary>The command with the README's package folder replaced by this run's.</summary>
    private string Feed(string command) => command.Replace(ReadmeSteps.FeedInReadme, _feed, StringComparison.Ordinal);

    /// <summary>Package ids <paramref name="id"/> depends on, through the packages of the feed, itself excluded.</summary>
    private HashSet<string> DependencyClosure(string id)
    {
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var pending = new Stack<string>([id]);
        while (pending.TryPop(out string? next))
        {
            string nupkg = Path.Combine(_feed, $"{next}.{_version}.nupkg");
            if (!File.Exists(nupkg)) continue; // a package from nuget.org: its own dependencies are not Parity's choice
            using var archive = ZipFile.OpenRead(nupkg);
            var nuspec = archive.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal));
            using var stream = nuspec.Open();
            foreach (var dependency in XDocument.Load(stream).Descendants().Where(e => e.Name.LocalName == "dependency"))
                if (dependency.Attribute("id")?.Value is { } dep && seen.Add(dep)) pending.Push(dep);
        }
        return seen;
    }

    private static string BuiltVersion(string root)
    {
        var match = Regex.Match(File.ReadAllText(Path.Combine(root, "Directory.Build.props")), "<Version>([^<]+)</Version>");
        return match.Success ? match.Groups[1].Value : throw new InvalidDataException("Directory.Build.props sets no <Version>");
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Parity.sln")) && File.Exists(Path.Combine(dir.FullName, "scripts", "pack"))) return dir.FullName;
        throw new DirectoryNotFoundException("no directory above the test output holds Parity.sln and scripts/pack");
    }

    /// <summary>Runs <paramref name="script"/> with bash (-e: the first failing command ends it) as a user's shell would.</summary>
    private static ShellResult Shell(string script, string directory, TimeSpan timeout)
    {
        var start = new ProcessStartInfo("bash", ["-euo", "pipefail", "-c", script])
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // The test host's MSBuild and test-platform variables would steer the child dotnet commands: a user's shell has none.
        foreach (string name in start.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)
                     || k.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase) || k.StartsWith("TESTINGPLATFORM", StringComparison.OrdinalIgnoreCase)
                     || k.Equals("DOTNET_HOST_PATH", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(name);
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1"; // no build servers left running after the test
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["PARITY_REQUIRE_BACKENDS"] = "torchsharp"; // a skipped TorchSharp test fails
        start.Environment["PARITY_TORCH_THREADS"] = "1";

        using var process = Process.Start(start)!;
        var output = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            lock (output) output.AppendLine($"(killed after {timeout.TotalSeconds:F0} s)");
            return new ShellResult(-1, output.ToString());
        }
        process.WaitForExit();
        lock (output) return new ShellResult(process.ExitCode, output.ToString());
    }

    private sealed record ShellResult(int ExitCode, string Output)
    {
        public string Tail => Output.Length <= 6000 ? Output : "..." + Output[^6000..];
    }

    [GeneratedRegex(@"(?m)^dotnet tool install --global .*$")]
    private static partial Regex ToolInstall();
}
