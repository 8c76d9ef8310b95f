using System.Text;

namespace Engine.AotSample;

/// <summary>A grey image, one byte per pixel, row-major (0 = black).</summary>
internal sealed record GreyImage(int Rows, int Cols, byte[] Pixels);

/// <summary>
/// Binary PGM (netpbm "P5"): the magic <c>P5</c>, then width, height and maxval as ASCII decimals separated by
/// whitespace (a <c>#</c> starts a comment that runs to the end of the line), one whitespace byte, then
/// width x height pixels of one byte each (maxval at most 255), top row first.
/// </summary>
internal static class Pgm
{
    public static GreyImage Read(string path, int maxSide)
    {
        byte[] bytes = File.ReadAllBytes(path);
        int position = 0;
        if (bytes.Length < 2 || bytes[0] != (byte)'P' || bytes[1] != (byte)'5')
        {
            string found = bytes.Length >= 2 ? $"'{Printable(bytes[0])}{Printable(bytes[1])}'" : $"{bytes.Length} byte(s)";
            throw new InvalidDataException($"{path}: not a binary PGM: expected the magic 'P5', found {found}.");
        }
        position = 2;
        int width = ReadHeaderNumber(bytes, ref position, path, "width");
        int height = ReadHeaderNumber(bytes, ref position, path, "height");
        int maxValue = ReadHeaderNumber(bytes, ref position, path, "maxval");
        if (position >= bytes.Length || !IsWhitespace(bytes[position]))
        {
            throw new InvalidDataException($"{path}: bad PGM header: expected one whitespace byte after the maxval.");
        }
        position++;

        if (width < 1 || height < 1 || width > maxSide || height > maxSide)
        {
            throw new InvalidDataException(
                $"{path}: the image is {width} x {height}; the model takes images of 1 x 1 up to {maxSide} x {maxSide}.");
        }
        if (maxValue < 1 || maxValue > 255)
        {
            throw new InvalidDataException($"{path}: maxval {maxValue}; only 8-bit PGM (maxval 1 to 255) is supported.");
        }
        int expected = width * height;
        int available = bytes.Length - position;
        if (available != expected)
        {
            throw new InvalidDataException(
                $"{path}: a {width} x {height} PGM holds {expected} pixel bytes, but {available} follow the header.");
        }

        var pixels = new byte[expected];
        for (int i = 0; i < expected; i++)
        {
            int v = bytes[position + i];
            if (v > maxValue)
            {
                throw new InvalidDataException($"{path}: pixel {i} is {v}, above the maxval {maxValue}.");
            }
            // Rescale to 0..255, rounding to nearest (exact when maxval is 255).
            pixels[i] = (byte)((v * 255 + maxValue / 2) / maxValue);
        }
        return new GreyImage(height, width, pixels);
    }

    public static void Write(string path, GreyImage image)
    {
        using var file = File.Create(path);
        file.Write(Encoding.ASCII.GetBytes($"P5\n{image.Cols} {image.Rows}\n255\n"));
        file.Write(image.Pixels);
    }

    private static int ReadHeaderNumber(byte[] bytes, ref int position, string path, string field)
    {
        // Whitespace and comments before the field.
        while (position < bytes.Length)
        {
            if (IsWhitespace(bytes[position]))
            {
                position++;
            }
            else if (bytes[position] == (byte)'#')
            {
                while (position < bytes.Length && bytes[position] != (byte)'\n' && bytes[position] != (byte)'\r')
                {
                    position++;
                }
            }
            else
            {
                break;
            }
        }
        int start = position;
        long value = 0;
        while (position < bytes.Length && bytes[position] is >= (byte)'0' and <= (byte)'9')
        {
            value = value * 10 + (bytes[position] - '0');
            if (value > int.MaxValue)
            {
                throw new InvalidDataException($"{path}: bad PGM header: the {field} is too large.");
            }
            position++;
        }
        if (position == start)
        {
            string found = position < bytes.Length ? $"'{Printable(bytes[position])}'" : "the end of the file";
            throw new InvalidDataException($"{path}: bad PGM header: expected the {field} (a decimal number), found {found}.");
        }
        return (int)value;
    }

    private static bool IsWhitespace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\v' or (byte)'\f';

    private static string Printable(byte b) => b is >= 0x20 and < 0x7f ? ((char)b).ToString() : $"\\x{b:X2}";
}
