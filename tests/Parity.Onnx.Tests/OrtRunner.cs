using Microsoft.ML.OnnxRuntime;
using Parity.Data;
using Parity.Tensors;

namespace Parity.Onnx.Tests;

/// <summary>Runs ONNX bytes in ONNX Runtime directly, independent of the arbiter's code path.</summary>
internal static class OrtRunner
{
    public static Dictionary<string, Tensor> Run(byte[] model, Batch batch, DType dtype, string[] outputs, long[]? inputShape = null)
    {
        using var session = new InferenceSession(model);
        long[] shape = inputShape ?? [batch.Size, batch.Features];
        using var input = dtype == DType.Float32
            ? OrtValue.CreateTensorValueFromMemory(batch.Inputs.ToFloats(), shape)
            : OrtValue.CreateTensorValueFromMemory((double[])batch.Inputs.Data.Clone(), shape);
        using var runOptions = new RunOptions();
        string inputName = session.InputMetadata.Keys.Single();
        using var results = session.Run(runOptions, [inputName], [input], outputs);
        var values = new Dictionary<string, Tensor>();
        for (int i = 0; i < outputs.Length; i++)
        {
            int[] dims = results[i].GetTensorTypeAndShape().Shape.Select(d => (int)d).ToArray();
            values[outputs[i]] = dtype == DType.Float32
                ? Tensor.FromFloats(results[i].GetTensorDataAsSpan<float>(), dims)
                : Tensor.FromDoubles(results[i].GetTensorDataAsSpan<double>(), dims);
        }
        return values;
    }
}
