using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Parity.Benchmarks;

// dotnet run -c Release --project benchmarks/Parity.Benchmarks -- --filter '*'   (BenchmarkDotNet's own options follow --)
// Short runs in process: no child build, so the run stays short on a busy machine; medians over the iterations.
var job = Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance);
BenchmarkSwitcher.FromAssembly(typeof(GigaflopsColumn).Assembly)
    .Run(args, DefaultConfig.Instance.AddJob(job).AddColumn(new GigaflopsColumn()));
