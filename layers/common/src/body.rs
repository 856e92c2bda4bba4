use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::{
    pin::Pin,
    task::{Context, Poll},
};

pin_project! {
    /// The response body of a layer that may answer by itself: either the inner service's body,
    /// or the small body of a [`Rejection`](crate::Rejection).
    #[project = RejectBodyProj]
    #[derive(Debug)]
    pub enum RejectBody<B> {
        /// The inner service's body, passed through untouched.
        Inner {
            /// The inner body.
            #[pin]
            body: B,
        },
        /// A body the layer wrote itself (possibly empty).
        Full {
            /// What is left to send.
            data: Option<Bytes>,
        },
    }
}

impl<B> RejectBody<B> {
    /// Wraps the inner service's body.
    pub fn inner(body: B) -> Self {
        Self::Inner { body }
    }

    /// A body holding `data`, sent as a single frame.
    pub fn full(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        Self::Full {
            data: (!data.is_empty()).then_some(data),
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::Full { data: None }
    }
}

impl<B: Default> Default for RejectBody<B> {
    fn default() -> Self {
        Self::inner(B::default())
    }
}

impl<B> Body for RejectBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project() {
            RejectBodyProj::Inner { body } => body.poll_frame(cx),
            RejectBodyProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Inner { body } => body.is_end_stream(),
            Self::Full { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Inner { body } => body.size_hint(),
            Self::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn full_body_yields_its_bytes_once() {
        let body: RejectBody<http_body_util::Empty<Bytes>> = RejectBody::full("hello");
        assert_eq!(body.size_hint().exact(), Some(5));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes, "hello");
    }

    #[tokio::test]
    async fn inner_body_passes_through() {
        let body = RejectBody::inner(http_body_util::Full::new(Bytes::from_static(b"inner")));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "inner");
    }

    #[test]
    fn empty_body_is_at_end() {
        assert!(RejectBody::<http_body_util::Empty<Bytes>>::empty().is_end_stream());
        assert!(RejectBody::<http_body_util::Empty<Bytes>>::full("").is_end_stream());
    }
}
