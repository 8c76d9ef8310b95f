namespace Engine.Layers;

/// <summary>How a <see cref="Conv2d"/> computes its convolutions (forward and input gradient); see docs/float-engine.md.</summary>
internal enum ConvAlgorithm
{
    /// <summary>Winograd where <see cref="Conv2d.PrefersWinograd"/> says it is faster, else direct.</summary>
    Auto,
    /// <summary>Always the direct convolution (implicit GEMM or im2col + GEMM).</summary>
    Direct,
    /// <summary>Winograd F(4 x 4, 3 x 3) wherever the kernel supports the geometry and CPU, else direct.</summary>
    Winograd,
}
