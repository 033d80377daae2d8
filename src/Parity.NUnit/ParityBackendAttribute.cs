using System.Reflection;
using Parity.Backends;
using Parity.Harness;

namespace Parity.NUnit;

/// <summary>
/// Registers an in-process backend (one with a parameterless constructor) for <see cref="ParityAssert"/> and
/// <see cref="RequiresBackendAttribute"/> in the test assembly that references its project or package:
/// <c>[assembly: ParityBackend("torchsharp", typeof(TorchSharpBackend))]</c>. The reference backends, the built-in
/// workers and the ONNX Runtime arbiter are always registered (<see cref="StandardBackends"/>).
/// </summary>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
public sealed class ParityBackendAttribute : Attribute
{
    /// <summary>Registers <paramref name="backendType"/> under <paramref name="name"/>.</summary>
    public ParityBackendAttribute(string name, Type backendType)
    {
        Name = name;
        BackendType = backendType;
    }

    /// <summary>The name used in <c>ParityAssert.Agree(..., "name")</c> and <c>[RequiresBackend("name")]</c>.</summary>
    public string Name { get; }

    /// <summary>An <see cref="IBackend"/> type with a public parameterless constructor.</summary>
    public Type BackendType { get; }
}

/// <summary>The registry Parity.NUnit uses when a test does not give one.</summary>
public static class ParityBackends
{
    /// <summary>
    /// <see cref="StandardBackends"/> plus every backend registered by a <see cref="ParityBackendAttribute"/> on an assembly
    /// loaded in the test process. Throws <see cref="ArgumentException"/> naming the attribute when a registered type is
    /// not a constructible <see cref="IBackend"/>.
    /// </summary>
    public static BackendRegistry Default() => StandardBackends.Create(inProcess: registry =>
    {
        foreach (var assembly in AppDomain.CurrentDomain.GetAssemblies())
        {
            if (assembly.IsDynamic) continue;
            foreach (var registration in assembly.GetCustomAttributes<ParityBackendAttribute>())
            {
                var type = registration.BackendType;
                if (!typeof(IBackend).IsAssignableFrom(type) || type.GetConstructor(Type.EmptyTypes) is null)
                    throw new ArgumentException($"[assembly: ParityBackend(\"{registration.Name}\", typeof({type.Name}))] in {assembly.GetName().Name}: "
                        + "the type must implement IBackend and have a public parameterless constructor");
                if (!registry.Contains(registration.Name)) registry.Add(registration.Name, () => (IBackend)Activator.CreateInstance(type)!);
            }
        }
    });
}
