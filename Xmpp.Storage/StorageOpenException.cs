namespace Xmpp.Storage;

// The storage cannot be opened (the database is unreachable, or its schema is newer than this server knows); the
// message is one line meant for the operator, and never holds a password.
public sealed class StorageOpenException(string message, Exception? inner = null) : Exception(message, inner);
