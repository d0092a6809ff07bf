//! Cluster errors as the errno a POSIX caller expects.

use cairn_client::ClientError;
use cairn_proto::ErrorCode;
use fuser::Errno;

/// An error as the errno the kernel is answered with: a cluster error
/// mapped by [`errno`], a local one as it is.
pub trait AsErrno {
    fn as_errno(&self) -> Errno;
}

impl AsErrno for ClientError {
    fn as_errno(&self) -> Errno {
        errno(self)
    }
}

impl AsErrno for Errno {
    fn as_errno(&self) -> Errno {
        *self
    }
}

/// A client result answered as the errno a POSIX caller expects.
pub trait OrErrno<T> {
    fn or_errno(self) -> Result<T, Errno>;
}

impl<T> OrErrno<T> for Result<T, ClientError> {
    fn or_errno(self) -> Result<T, Errno> {
        self.map_err(|e| errno(&e))
    }
}

pub fn errno(e: &ClientError) -> Errno {
    match e {
        ClientError::Rpc(r) => match r.code {
            ErrorCode::NotFound => Errno::ENOENT,
            ErrorCode::AlreadyExists => Errno::EEXIST,
            ErrorCode::NotADirectory => Errno::ENOTDIR,
            ErrorCode::IsADirectory => Errno::EISDIR,
            ErrorCode::NotEmpty => Errno::ENOTEMPTY,
            ErrorCode::InvalidName | ErrorCode::InvalidRequest | ErrorCode::InvalidMove => {
                Errno::EINVAL
            }
            ErrorCode::NotPermitted => Errno::EPERM,
            ErrorCode::PermissionDenied => Errno::EACCES,
            ErrorCode::NoData => Errno::NO_XATTR,
            ErrorCode::FileTooLarge => Errno::EFBIG,
            ErrorCode::FailedPrecondition => Errno::EBUSY,
            ErrorCode::NoSpace => Errno::ENOSPC,
            ErrorCode::NotLeader
            | ErrorCode::Unavailable
            | ErrorCode::Internal
            | ErrorCode::ChunkMissing
            | ErrorCode::HashMismatch
            | ErrorCode::NotInline
            | ErrorCode::InlineData => Errno::EIO,
        },
        ClientError::TooFewServers { .. }
        | ClientError::NoSpace { .. }
        | ClientError::NoChunkservers => Errno::ENOSPC,
        ClientError::Changed { .. } => Errno::EAGAIN,
        ClientError::CommitTooLate { .. } => Errno::ETIMEDOUT,
        // A local error keeps its own errno (a flush that failed with
        // ENOSPC under a truncate answers ENOSPC, not EIO).
        ClientError::Io(e) => e.raw_os_error().map_or(Errno::EIO, Errno::from_i32),
        ClientError::Unreachable(_)
        | ClientError::ChunkUnavailable { .. }
        | ClientError::Upload { .. }
        | ClientError::Config(_)
        | ClientError::Task(_)
        | ClientError::Net(_)
        | ClientError::Protocol(_) => Errno::EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_proto::RpcError;

    #[test]
    fn refusals_map_to_their_errno() {
        let e = |c| errno(&ClientError::Rpc(RpcError::new(c, "x")));
        assert_eq!(e(ErrorCode::NotFound), Errno::ENOENT);
        assert_eq!(e(ErrorCode::NotEmpty), Errno::ENOTEMPTY);
        assert_eq!(e(ErrorCode::AlreadyExists), Errno::EEXIST);
        assert_eq!(e(ErrorCode::IsADirectory), Errno::EISDIR);
        assert_eq!(e(ErrorCode::NotADirectory), Errno::ENOTDIR);
        assert_eq!(e(ErrorCode::NoData), Errno::ENODATA);
        assert_eq!(e(ErrorCode::Unavailable), Errno::EIO);
        assert_eq!(e(ErrorCode::NoSpace), Errno::ENOSPC);
    }

    #[test]
    fn a_local_error_keeps_its_errno() {
        let io = |code| errno(&ClientError::Io(std::io::Error::from_raw_os_error(code)));
        assert_eq!(io(libc::ENOSPC), Errno::ENOSPC);
        assert_eq!(io(libc::EFBIG), Errno::EFBIG);
        let other = ClientError::Io(std::io::Error::other("no errno"));
        assert_eq!(errno(&other), Errno::EIO);
    }
}
