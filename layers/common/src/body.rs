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
    #[derive(Debug)]
    pub struct RejectBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Full { data: Option<Bytes> },
    }
}

impl<B> RejectBody<B> {
    /// Wraps the inner service's body.
    pub fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    /// A body holding `data`, sent as a single frame.
    pub fn full(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        Self {
            kind: Kind::Full {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self {
            kind: Kind::Full { data: None },
        }
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
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Full { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

pin_project! {
    /// The response body of a layer with a [`Fallback`](crate::refusal::Fallback): the inner
    /// service's body, or the body of the fallback service's answer, whatever its type. So a
    /// fallback answers with its own body type at any place in a stack: it never has to produce
    /// the body type the layers inside have wrapped.
    ///
    /// Unlike `http_body_util::Either`, whose errors are boxed, it keeps the inner body's error
    /// type, as every espresso layer keeps its inner service's.
    #[derive(Debug)]
    pub struct FallbackBody<B, F> {
        #[pin]
        kind: Either<B, F>,
    }
}

pin_project! {
    #[project = EitherProj]
    #[derive(Debug)]
    enum Either<B, F> {
        Inner { #[pin] body: B },
        Fallback { #[pin] body: F },
    }
}

impl<B, F> FallbackBody<B, F> {
    /// Wraps the inner service's body.
    pub fn inner(body: B) -> Self {
        Self {
            kind: Either::Inner { body },
        }
    }

    /// Wraps the fallback service's body.
    pub fn fallback(body: F) -> Self {
        Self {
            kind: Either::Fallback { body },
        }
    }

    /// `true` when the body is the fallback service's.
    pub fn is_fallback(&self) -> bool {
        matches!(self.kind, Either::Fallback { .. })
    }
}

/// The fallback's body yields the inner body's data; its errors convert into the inner body's
/// (under axum and tonic both are the framework's own body and error types).
impl<B, F> Body for FallbackBody<B, F>
where
    B: Body,
    F: Body<Data = B::Data>,
    F::Error: Into<B::Error>,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            EitherProj::Inner { body } => body.poll_frame(cx),
            EitherProj::Fallback { body } => body
                .poll_frame(cx)
                .map(|frame| frame.map(|frame| frame.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Either::Inner { body } => body.is_end_stream(),
            Either::Fallback { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Either::Inner { body } => body.size_hint(),
            Either::Fallback { body } => body.size_hint(),
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

    #[tokio::test]
    async fn a_fallback_body_yields_either_side_with_the_inner_error_type() {
        use http_body_util::Full;
        type Body = FallbackBody<Full<Bytes>, String>;
        let inner = Body::inner(Full::new(Bytes::from_static(b"inner")));
        assert!(!inner.is_fallback());
        assert_eq!(inner.collect().await.unwrap().to_bytes(), "inner");
        let fallback = Body::fallback("from the fallback".to_owned());
        assert!(fallback.is_fallback());
        assert_eq!(fallback.size_hint().exact(), Some(17));
        assert_eq!(
            fallback.collect().await.unwrap().to_bytes(),
            "from the fallback"
        );
    }

    #[test]
    fn empty_body_is_at_end() {
        assert!(RejectBody::<http_body_util::Empty<Bytes>>::empty().is_end_stream());
        assert!(RejectBody::<http_body_util::Empty<Bytes>>::full("").is_end_stream());
    }
}
