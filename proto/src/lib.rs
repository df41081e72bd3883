//! The gRPC contract of Bridgehead, package `bridgehead.v1`, generated from `bridgehead/v1/*.proto`.
//!
//! Only the thin adapter modules (`backend::grpc`, `frontend::backend_client`) and the admin
//! CLI use these types; everything else works with domain types.
#[allow(clippy::large_enum_variant)] // generated code: a oneof of an envelope and a chunk
pub mod v1 {
    tonic::include_proto!("bridgehead.v1");
}

/// Largest gRPC chunk of message content that either side sends (bodies always travel as
/// streams of chunks, so gRPC's message-size limit never caps the message size).
pub const CHUNK_SIZE: usize = 256 * 1024;

/// Most content bytes one `FetchMany` reply carries (well under gRPC's 4 MiB message limit).
pub const FETCH_MANY_MAX_BYTES: usize = 1024 * 1024;
/// Most messages one maildrop listing page (`Open`, `ListMore`) holds: about 0.7 MB encoded,
/// well under gRPC's 4 MiB message limit, so a mailbox of any size can be listed.
pub const LISTING_PAGE: usize = 65_536;
/// Most messages one `FetchMany` asks for.
pub const FETCH_MANY_MAX_UIDS: usize = 64;
