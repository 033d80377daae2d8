namespace Parity.Onnx.Tests;

public class SmokeTests
{
    [Test]
    public void Builds() => Assert.Pass();
}
