using TpLlm.Parallel;
using TpLlm.Tensors;

namespace TpLlm.Models;

/// <summary>
/// The gated MLP of one rank, <c>down(act(gate(x)) · up(x))</c>: fused gate/up column-parallel, down row-parallel;
/// the activation is the family's (SiLU: SwiGLU; tanh GELU: GeGLU).
/// </summary>
public sealed class GatedMlp
{
    private readonly ColumnParallelLinear _gateUp; // W [2·I_r, H]
    private readonly RowParallelLinear _down;      // W [H, I_r]
    private readonly MlpActivation _activation;
    private float[] _gu = [];   // [T, 2·I_r]
    private float[] _act = [];  // [T, I_r]

    /// <summary>Fused gate/up projection.</summary>
    public ColumnParallelLinear GateUp => _gateUp;

    /// <summary>Down projection.</summary>
    public RowParallelLinear Down => _down;

    /// <summary>Wraps the rank's projections.</summary>
    public GatedMlp(ColumnParallelLinear gateUp, RowParallelLinear down, MlpActivation activation = MlpActivation.Silu)
    {
        _gateUp = gateUp;
        _down = down;
        _activation = activation;
    }

    /// <summary><paramref name="x"/> <c>[T, H]</c> → <paramref name="output"/> <c>[T, H]</c> (reduced across ranks).</summary>
    public void Forward(MatMul mm, ReadOnlySpan<float> x, int T, Span<float> output)
    {
        int ir = _down.Weight.Cols;
        ColumnParallelLinear.Grow(ref _gu, T * 2 * ir);
        ColumnParallelLinear.Grow(ref _act, T * ir);
        _gateUp.Forward(mm, x, T, _gu);
        if (_activation == MlpActivation.GeluTanh) GeluTanhGlu.Apply(_gu, T, ir, _act);
        else SwiGlu.Apply(_gu, T, ir, _act);
        _down.Forward(mm, _act, T, output);
    }
}
