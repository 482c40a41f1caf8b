//! The Maintenance (`Status`, `Alarm`) and Cluster (`MemberList`) services of a one-member
//! cluster. Membership changes, snapshots, hashes, defragmentation, leader moves and
//! downgrades answer `Unimplemented`: this server is a single node (a highly available
//! deployment runs real etcd, see the README).

use std::sync::Arc;

use etcd_client::proto::{
    PbAlarmRequest, PbAlarmResponse, PbClusterService, PbDefragmentRequest, PbDefragmentResponse,
    PbDowngradeRequest, PbDowngradeResponse, PbHashKvRequest, PbHashKvResponse, PbHashRequest,
    PbHashResponse, PbMaintenanceService, PbMember, PbMemberAddRequest, PbMemberAddResponse,
    PbMemberListRequest, PbMemberListResponse, PbMemberPromoteRequest, PbMemberPromoteResponse,
    PbMemberRemoveRequest, PbMemberRemoveResponse, PbMemberUpdateRequest, PbMemberUpdateResponse,
    PbMoveLeaderRequest, PbMoveLeaderResponse, PbSnapshotRequest, PbSnapshotResponse,
    PbStatusRequest, PbStatusResponse,
};
use tonic::{Request, Response, Status};

use crate::kv::Shared;
use crate::status::Refused;

/// The etcd version this server answers as (the API level it implements).
pub const VERSION: &str = "3.4.0";

fn single_node(what: &'static str) -> Status {
    Refused::Unsupported(what, "this server is a single node").into()
}

#[derive(Debug, Clone)]
pub struct Maintenance(pub Arc<Shared>);

#[tonic::async_trait]
impl PbMaintenanceService for Maintenance {
    async fn alarm(
        &self,
        _req: Request<PbAlarmRequest>,
    ) -> Result<Response<PbAlarmResponse>, Status> {
        let rev = self.0.store().revision();
        Ok(Response::new(PbAlarmResponse { header: self.0.header(rev), alarms: vec![] }))
    }

    async fn status(
        &self,
        _req: Request<PbStatusRequest>,
    ) -> Result<Response<PbStatusResponse>, Status> {
        let store = self.0.store();
        let rev = store.revision();
        let (size, in_use) = store.db_size().map_err(Status::from)?;
        drop(store);
        let index = u64::try_from(rev).unwrap_or(0);
        Ok(Response::new(PbStatusResponse {
            header: self.0.header(rev),
            version: VERSION.into(),
            db_size: size,
            leader: self.0.id.member_id,
            raft_index: index,
            raft_term: 1,
            raft_applied_index: index,
            db_size_in_use: in_use,
            ..Default::default()
        }))
    }

    async fn defragment(
        &self,
        _req: Request<PbDefragmentRequest>,
    ) -> Result<Response<PbDefragmentResponse>, Status> {
        Err(single_node("Defragment"))
    }

    async fn hash(&self, _req: Request<PbHashRequest>) -> Result<Response<PbHashResponse>, Status> {
        Err(single_node("Hash"))
    }

    async fn hash_kv(
        &self,
        _req: Request<PbHashKvRequest>,
    ) -> Result<Response<PbHashKvResponse>, Status> {
        Err(single_node("HashKV"))
    }

    type SnapshotStream = tonic::codegen::tokio_stream::Empty<Result<PbSnapshotResponse, Status>>;

    async fn snapshot(
        &self,
        _req: Request<PbSnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        Err(single_node("Snapshot"))
    }

    async fn move_leader(
        &self,
        _req: Request<PbMoveLeaderRequest>,
    ) -> Result<Response<PbMoveLeaderResponse>, Status> {
        Err(single_node("MoveLeader"))
    }

    async fn downgrade(
        &self,
        _req: Request<PbDowngradeRequest>,
    ) -> Result<Response<PbDowngradeResponse>, Status> {
        Err(single_node("Downgrade"))
    }
}

#[derive(Debug, Clone)]
pub struct Cluster {
    pub shared: Arc<Shared>,
    /// The client URL members report (`http://<listen>`).
    pub client_url: String,
}

#[tonic::async_trait]
impl PbClusterService for Cluster {
    async fn member_add(
        &self,
        _req: Request<PbMemberAddRequest>,
    ) -> Result<Response<PbMemberAddResponse>, Status> {
        Err(single_node("MemberAdd"))
    }

    async fn member_remove(
        &self,
        _req: Request<PbMemberRemoveRequest>,
    ) -> Result<Response<PbMemberRemoveResponse>, Status> {
        Err(single_node("MemberRemove"))
    }

    async fn member_update(
        &self,
        _req: Request<PbMemberUpdateRequest>,
    ) -> Result<Response<PbMemberUpdateResponse>, Status> {
        Err(single_node("MemberUpdate"))
    }

    async fn member_list(
        &self,
        _req: Request<PbMemberListRequest>,
    ) -> Result<Response<PbMemberListResponse>, Status> {
        let rev = self.shared.store().revision();
        Ok(Response::new(PbMemberListResponse {
            header: self.shared.header(rev),
            members: vec![PbMember {
                id: self.shared.id.member_id,
                name: crate::NAME.into(),
                peer_ur_ls: vec![],
                client_ur_ls: vec![self.client_url.clone()],
                is_learner: false,
            }],
        }))
    }

    async fn member_promote(
        &self,
        _req: Request<PbMemberPromoteRequest>,
    ) -> Result<Response<PbMemberPromoteResponse>, Status> {
        Err(single_node("MemberPromote"))
    }
}
