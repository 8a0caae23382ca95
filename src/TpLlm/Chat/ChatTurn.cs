namespace TpLlm.Chat;

/// <summary>One message of a conversation, as a chat template sees it.</summary>
/// <param name="Role">system, user, assistant (or tool).</param>
/// <param name="Content">The message text.</param>
public sealed record ChatTurn(string Role, string Content);
