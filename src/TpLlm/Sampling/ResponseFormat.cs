namespace TpLlm.Sampling;

/// <summary>What the generated text must be (OpenAI's <c>response_format</c>).</summary>
public enum ResponseFormat
{
    /// <summary>Any text.</summary>
    Text,

    /// <summary>One JSON object (OpenAI's JSON mode); the sequence can end only once it is complete.</summary>
    JsonObject,
}
