using System.Numerics.Tensors;
using Engine.Kernels;
using Engine.Tensors;

namespace Engine.Training;

/// <summary>
/// Knowledge distillation (Hinton, Vinyals and Dean, 2015, "Distilling the knowledge in a neural network"): the student
/// learns from the labels and from a teacher's softened probabilities, which say how alike the classes look to a
/// network that already knows them (a 7 that is nearly a 1). With temperature T, weight α, student logits z and teacher
/// logits t, and q = softmax(t / T), p = softmax(z / T):
/// <code>
///   loss        = (1 - α) CE(z, labels) + α T^2 (1/N) sum_n KL(q[n] || p[n]),    KL(q || p) = sum_c q[c] (log q[c] - log p[c])
///   dloss/dz[n] = (1 - α) dCE/dz[n] + α T (p[n] - q[n]) / N
/// </code>
/// The T^2 keeps the soft term's gradients the same size whatever the temperature (the paper's section 2). The hard
/// term is <see cref="CrossEntropyLoss"/>, label smoothing included.
/// </summary>
public sealed class DistillationLoss
{
    private readonly CrossEntropyLoss _hard;
    private readonly FloatTensor _gradient = new(0);
    private float[] _student = [], _teacher = [];
    private int _batch, _classes;

    /// <summary>A loss with temperature <paramref name="temperature"/> and soft-target weight <paramref name="weight"/> (α).</summary>
    public DistillationLoss(float temperature, float weight, float labelSmoothing = 0f)
    {
        if (!(temperature > 0f) || float.IsInfinity(temperature))
        {
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "the distillation temperature must be a finite number > 0.");
        }
        if (!(weight >= 0f && weight <= 1f))
        {
            throw new ArgumentOutOfRangeException(nameof(weight), weight, "the distillation weight must be in [0, 1].");
        }
        Temperature = temperature;
        Weight = weight;
        _hard = new CrossEntropyLoss(labelSmoothing);
    }

    /// <summary>T: the higher, the softer the probabilities compared.</summary>
    public float Temperature { get; }

    /// <summary>α: the weight of the teacher's soft targets; 1 - α goes to the labels.</summary>
    public float Weight { get; }

    /// <summary>The mean loss over the batch; remembers what <see cref="Backward"/> needs.</summary>
    public float Forward(FloatTensor logits, FloatTensor teacherLogits, ReadOnlySpan<int> labels)
    {
        if (!teacherLogits.Shape.SequenceEqual(logits.Shape))
        {
            throw new ArgumentException($"distillation: teacher logits {FloatTensor.Format(teacherLogits.Shape)} and student logits {FloatTensor.Format(logits.Shape)} differ in shape.");
        }
        float hard = _hard.Forward(logits, labels);
        int batch = logits.Dim(0), classes = logits.Dim(1);
        if (_student.Length < batch * classes)
        {
            _student = new float[batch * classes];
            _teacher = new float[batch * classes];
        }
        Span<float> scaled = classes <= 256 ? stackalloc float[classes] : new float[classes];
        Span<float> logStudent = classes <= 256 ? stackalloc float[classes] : new float[classes];
        Span<float> logTeacher = classes <= 256 ? stackalloc float[classes] : new float[classes];
        double divergence = 0;
        for (int n = 0; n < batch; n++)
        {
            TensorPrimitives.Divide(logits.Data.Slice(n * classes, classes), Temperature, scaled);
            SoftmaxF32.LogSoftmax(scaled, logStudent);
            TensorPrimitives.Divide(teacherLogits.Data.Slice(n * classes, classes), Temperature, scaled);
            SoftmaxF32.LogSoftmax(scaled, logTeacher);
            Span<float> p = _student.AsSpan(n * classes, classes), q = _teacher.AsSpan(n * classes, classes);
            TensorPrimitives.Exp(logStudent, p);
            TensorPrimitives.Exp(logTeacher, q);
            for (int c = 0; c < classes; c++)
            {
                divergence += q[c] * ((double)logTeacher[c] - logStudent[c]);
            }
        }
        (_batch, _classes) = (batch, classes);
        return (float)((1 - Weight) * hard + Weight * Temperature * Temperature * divergence / batch);
    }

    /// <summary>dLoss/dLogits [N, C] for the last <see cref="Forward"/>.</summary>
    public FloatTensor Backward()
    {
        if (_batch == 0)
        {
            throw new InvalidOperationException("distillation: Backward called before Forward.");
        }
        FloatTensor hard = _hard.Backward();
        _gradient.Resize(hard.Shape);
        int length = _batch * _classes;
        Span<float> g = _gradient.Data;
        TensorPrimitives.Subtract(_student.AsSpan(0, length), _teacher.AsSpan(0, length), g);
        TensorPrimitives.Multiply(g, Weight * Temperature / _batch, g);
        TensorPrimitives.MultiplyAdd(hard.Data, 1 - Weight, g, g);
        return _gradient;
    }
}
