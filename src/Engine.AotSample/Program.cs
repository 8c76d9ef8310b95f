// engine-digit: classifies one handwritten digit with the bundled int8 model, embedded in the executable.
//   engine-digit IMAGE.pgm
//   engine-digit --idx IMAGES_FILE --index N [--save-pgm OUT.pgm]
// Prints the digit and the three highest softmax scores. Exit codes: 0 success, 1 bad input, 2 bad usage.
using System.Globalization;
using System.Reflection;
using Engine.AotSample;
using Engine.Data;
using Engine.Inference;
using Engine.Kernels;

const string ModelResource = "seed1.int8.safetensors";
const string Usage =
    "usage: engine-digit IMAGE.pgm\n" +
    "       engine-digit --idx IMAGES_FILE --index N [--save-pgm OUT.pgm]\n" +
    "Classifies one digit (white on black, as MNIST; binary PGM P5, 8-bit, at most 32 x 32; or image N of an IDX3\n" +
    "file, raw or gzip) with the embedded int8 model and prints the digit and its top-3 scores.";

string? pgmPath = null, idxPath = null, indexText = null, savePath = null;
for (int i = 0; i < args.Length; i++)
{
    string arg = args[i];
    if (arg is "-h" or "--help")
    {
        Console.WriteLine(Usage);
        return 0;
    }
    if (arg is "--idx" or "--index" or "--save-pgm")
    {
        if (i + 1 >= args.Length)
        {
            return UsageError($"{arg} needs a value.");
        }
        string value = args[++i];
        switch (arg)
        {
            case "--idx": idxPath = value; break;
            case "--index": indexText = value; break;
            default: savePath = value; break;
        }
    }
    else if (arg.StartsWith('-') && arg.Length > 1)
    {
        return UsageError($"unknown option '{arg}'.");
    }
    else if (pgmPath is null)
    {
        pgmPath = arg;
    }
    else
    {
        return UsageError($"unexpected argument '{arg}'.");
    }
}
if ((pgmPath is null) == (idxPath is null))
{
    return UsageError("give either one PGM file or --idx IMAGES_FILE --index N.");
}
if (idxPath is not null && indexText is null)
{
    return UsageError("--idx needs --index N.");
}
if (idxPath is null && (indexText is not null || savePath is not null))
{
    return UsageError("--index and --save-pgm go with --idx.");
}
int index = 0;
if (indexText is not null && !int.TryParse(indexText, NumberStyles.None, CultureInfo.InvariantCulture, out index))
{
    return UsageError($"--index must be a non-negative integer, got '{indexText}'.");
}

try
{
    Predictor model = LoadEmbeddedModel();
    int canvas = model.Preprocessing.Height;
    if (model.Preprocessing.Channels != 1 || model.Preprocessing.Width != canvas)
    {
        throw new InvalidDataException(
            $"{ModelResource}: input shape [{string.Join(", ", model.InputShape.ToArray())}], expected one square grey channel.");
    }

    GreyImage image;
    if (idxPath is not null)
    {
        image = ReadIdxImage(idxPath, index, canvas);
        if (savePath is not null)
        {
            Pgm.Write(savePath, image);
        }
    }
    else
    {
        image = Pgm.Read(pgmPath!, canvas);
    }

    var input = new float[model.InputLength];
    model.PreparePixels(image.Pixels, image.Rows, image.Cols, input);
    var logits = new float[model.OutputLength];
    model.Predict(input, logits);

    var scores = new float[logits.Length];
    SoftmaxF32.Softmax(logits, scores);
    int[] top = new int[Math.Min(3, scores.Length)];
    ClassScores.TopK(scores, top);
    Console.WriteLine($"digit: {top[0]}");
    Console.WriteLine("top-3: " + string.Join(", ",
        top.Select(c => string.Create(CultureInfo.InvariantCulture, $"{c} ({scores[c]:0.0000})"))));
    if (savePath is not null)
    {
        Console.WriteLine($"saved: {savePath}");
    }
    return 0;
}
catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException)
{
    // Missing files (FileNotFoundException, DirectoryNotFoundException) are IOExceptions; format errors InvalidDataException.
    Console.Error.WriteLine($"engine-digit: {e.Message}");
    return 1;
}

static int UsageError(string message)
{
    Console.Error.WriteLine($"engine-digit: {message}");
    Console.Error.WriteLine(Usage);
    return 2;
}

static Predictor LoadEmbeddedModel()
{
    using Stream stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(ModelResource)
        ?? throw new InvalidDataException($"the executable has no embedded resource '{ModelResource}'.");
    return Predictor.Load(stream, ModelResource, new PredictorOptions { Threads = 1 });
}

// Image `index` of an IDX3 file (count x rows x cols), read by the engine's own IdxReader.
static GreyImage ReadIdxImage(string path, int index, int maxSide)
{
    IdxArray images = IdxReader.Read(path, expectedDimensionCount: 3);
    int count = images.Dimensions[0], rows = images.Dimensions[1], cols = images.Dimensions[2];
    if (index >= count)
    {
        throw new ArgumentOutOfRangeException(null,
            $"{path}: index {index} is out of range; the file holds {count} images (0 to {count - 1}).");
    }
    if (rows > maxSide || cols > maxSide)
    {
        throw new InvalidDataException($"{path}: images are {rows} x {cols}; the model takes at most {maxSide} x {maxSide}.");
    }
    byte[] pixels = images.Data.AsSpan(index * rows * cols, rows * cols).ToArray();
    return new GreyImage(rows, cols, pixels);
}
