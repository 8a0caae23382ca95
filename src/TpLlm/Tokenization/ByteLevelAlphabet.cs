namespace TpLlm.Tokenization;

/// <summary>
/// GPT-2's byte-level alphabet: each byte 0–255 maps to one printable character
/// (printable ASCII and Latin-1 map to themselves, the rest to U+0100 onwards), so a BPE
/// vocabulary of strings covers every byte sequence.
/// </summary>
public static class ByteLevelAlphabet
{
    private static readonly char[] ByteToChar = Build();
    private static readonly Dictionary<char, byte> CharToByte = Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    private static char[] Build()
    {
        var map = new char[256];
        var direct = new bool[256];
        for (int b = '!'; b <= '~'; b++) direct[b] = true;
        for (int b = 0xA1; b <= 0xAC; b++) direct[b] = true;
        for (int b = 0xAE; b <= 0xFF; b++) direct[b] = true;
        int n = 0;
        for (int b = 0; b < 256; b++) map[b] = direct[b] ? (char)b : (char)(256 + n++);
        return map;
    }

    /// <summary>The character standing for byte <paramref name="b"/>.</summary>
    public static char Encode(byte b) => ByteToChar[b];

    /// <summary>Appends the bytes a byte-level token string stands for; false if it holds a character outside the alphabet.</summary>
    public static bool TryDecode(string token, List<byte> output)
    {
        foreach (char c in token)
        {
            if (!CharToByte.TryGetValue(c, out var b)) return false;
            output.Add(b);
        }
        return true;
    }
}
