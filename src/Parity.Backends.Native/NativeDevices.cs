using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Parity.Backends.Native;

/// <summary>The device a native session runs on and why it was chosen.</summary>
/// <param name="Kind"><c>cuda</c> or <c>cpu</c>.</param>
/// <param name="Name">The device's name as ILGPU reports it.</param>
/// <param name="Why">Why this device: found, requested, or the fallback.</param>
public sealed record NativeDeviceChoice(string Kind, string Name, string Why)
{
    /// <summary>One line for <c>parity backends</c>, e.g. "ILGPU CPU accelerator (no CUDA device found)".</summary>
    public string Summary => Kind == NativeDevices.Cuda ? $"CUDA device {Name} ({Why})" : $"ILGPU CPU accelerator ({Why})";
}

/// <summary>
/// Device discovery and choice: CUDA when ILGPU finds a CUDA device, otherwise the CPU accelerator, which emulates
/// every GPU thread, group and barrier: a correctness tool, not a fast path (one 1000x784x100 product takes about
/// 77 s there; README.md, "Measured figures").
/// </summary>
public static class NativeDevices
{
    /// <summary>The CUDA device kind.</summary>
    public const string Cuda = "cuda";

    /// <summary>The CPU accelerator kind.</summary>
    public const string Cpu = "cpu";

    /// <summary>
    /// The emulated CPU device: 8 warps of 32 threads, so a group holds the 16 x 16 threads of a product tile (the
    /// default CPU device allows only 16 threads per group); one multiprocessor, so groups run one after another.
    /// </summary>
    public static CPUDevice CpuDevice { get; } = new(numThreadsPerWarp: 32, numWarpsPerMultiprocessor: 8, numMultiprocessors: 1);

    /// <summary>A context that knows the CUDA devices (none without a driver) and the CPU device.</summary>
    public static Context CreateContext() => Context.Create(builder => builder.Cuda().CPU(CpuDevice));

    /// <summary>Names of the CUDA devices present; empty without a GPU or a driver. Never throws.</summary>
    public static IReadOnlyList<string> CudaDeviceNames()
    {
        try
        {
            using var context = CreateContext();
            var names = new List<string>();
            foreach (var device in context.GetCudaDevices()) names.Add(device.Name);
            return names;
        }
        catch (Exception)
        {
            // A broken driver installation is the same, for choosing, as no CUDA device.
            return [];
        }
    }

    /// <summary>
    /// Picks the device: <paramref name="requested"/> <c>cuda</c> or <c>cpu</c> wins; null means CUDA when present.
    /// Throws <see cref="BackendException"/> when CUDA is requested but absent or the name is unknown.
    /// </summary>
    public static (Device Device, NativeDeviceChoice Choice) Choose(Context context, string? requested)
    {
        var cuda = context.GetCudaDevices();
        var cpu = context.GetCPUDevices()[0];
        switch (requested?.ToLowerInvariant())
        {
            case null or "":
                return cuda.Count > 0
                    ? (cuda[0], new NativeDeviceChoice(Cuda, cuda[0].Name, "CUDA device found"))
                    : (cpu, new NativeDeviceChoice(Cpu, cpu.Name, "no CUDA device found"));
            case Cuda:
                if (cuda.Count == 0)
                    throw new BackendException("native: --device cuda was requested but ILGPU finds no CUDA device (no NVIDIA GPU or driver); use --device cpu");
                return (cuda[0], new NativeDeviceChoice(Cuda, cuda[0].Name, "requested with --device cuda"));
            case Cpu:
                return (cpu, new NativeDeviceChoice(Cpu, cpu.Name, "requested with --device cpu"));
            default:
                throw new BackendException($"native: unknown device '{requested}'; use cpu or cuda");
        }
    }

    /// <summary>
    /// Lanes per column of the reduction kernels: 16 on CUDA (16 x 16 = 256 threads per group). One on the CPU
    /// accelerator: there every emulated thread costs a context switch at each barrier, and with one lane each sum
    /// runs over the rows in order, the order the reference uses, so a CPU run rounds as <c>reference-f32</c> does.
    /// (The multi-lane trees are what CUDA runs; the kernel tests run them on the CPU accelerator too.)
    /// </summary>
    public static int ReductionLanes(Accelerator accelerator) =>
        accelerator.AcceleratorType == AcceleratorType.Cuda ? 16 : 1;
}
